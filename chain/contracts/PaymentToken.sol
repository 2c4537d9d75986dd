// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {ERC20Base} from "./ERC20Base.sol";

/// @title PaymentToken: the stablecoin-like ERC-20 that payouts are paid in (6 decimals).
/// @notice Reference contract for local runs and tests. Only the owner mints.
contract PaymentToken is ERC20Base {
    uint8 public constant decimals = 6;
    address public owner;

    constructor(string memory name_, string memory symbol_, address owner_) ERC20Base(name_, symbol_) {
        owner = owner_;
    }

    function mint(address to, uint256 amount) external {
        require(msg.sender == owner, "only owner");
        _mint(to, amount);
    }
}
