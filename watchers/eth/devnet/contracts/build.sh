#!/usr/bin/env bash
# Rebuilds the devnet contracts' bytecode and ABI from their Solidity source
# with solc-js from the npm registry. The outputs are committed, so building
# cordon never needs a Solidity compiler; run this only after editing a .sol.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm install --prefix "$tmp" --no-audit --no-fund solc@0.8.28 >/dev/null
for c in DevToken DevNFT Reverter; do
  npx --prefix "$tmp" solcjs --bin --abi --optimize -o "$tmp/out" "$c.sol" >/dev/null
  cp "$tmp/out/${c}_sol_${c}.bin" "$c.bin"
  cp "$tmp/out/${c}_sol_${c}.abi" "$c.abi"
done
# DevWallet.sol holds the contract wallet, its logic and the attacker's two.
npx --prefix "$tmp" solcjs --bin --abi --optimize -o "$tmp/out" DevWallet.sol >/dev/null
for c in DevWallet DevWalletLogic DevAttacker DevAttackerLogic; do
  cp "$tmp/out/DevWallet_sol_${c}.bin" "$c.bin"
  cp "$tmp/out/DevWallet_sol_${c}.abi" "$c.abi"
done
