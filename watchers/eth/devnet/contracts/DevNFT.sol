// SPDX-License-Identifier: Apache-2.0
// DevNFT is a minimal ERC-721 collection for the devnet: its Transfer event
// has the same signature as ERC-20's but indexes the token id as a fourth
// topic, which is how the watcher tells the two apart.
pragma solidity 0.8.28;

contract DevNFT {
    mapping(uint256 => address) public ownerOf;
    uint256 public minted;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);

    function mint(address to) external returns (uint256 id) {
        id = ++minted;
        ownerOf[id] = to;
        emit Transfer(address(0), to, id);
    }

    function transferFrom(address from, address to, uint256 id) external {
        require(ownerOf[id] == from && from == msg.sender, "owner");
        ownerOf[id] = to;
        emit Transfer(from, to, id);
    }
}
