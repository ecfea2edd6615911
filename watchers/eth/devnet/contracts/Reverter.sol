// SPDX-License-Identifier: Apache-2.0
// Reverter accepts value and then reverts when asked to, so the devnet has
// failed transactions whose value and logs must not become transfers.
pragma solidity 0.8.28;

contract Reverter {
    event Transfer(address indexed from, address indexed to, uint256 value);

    function fail(address to) external payable {
        emit Transfer(msg.sender, to, msg.value);
        revert("always");
    }
}
