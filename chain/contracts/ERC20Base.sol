// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title ERC20Base: the ERC-20 core that PaymentToken and AssetToken share.
/// @notice Balances, allowances, transfer/approve/transferFrom and the internal mint and burn.
/// Abstract: each token decides who may mint or burn and states its own decimals. A token that
/// follows balances overrides the two hooks, which run for every account whose balance changes:
/// `_beforeBalanceChange` before any balance is written, `_afterBalanceChange` after every balance
/// is written and before `Transfer` is emitted. Here they do nothing.
abstract contract ERC20Base {
    string public name;
    string public symbol;
    uint256 public totalSupply;

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= amount, "insufficient allowance");
        if (allowed != type(uint256).max) {
            allowance[from][msg.sender] = allowed - amount;
        }
        _transfer(from, to, amount);
        return true;
    }

    function _transfer(address from, address to, uint256 amount) internal {
        require(to != address(0), "transfer to zero address");
        uint256 balance = balanceOf[from];
        require(balance >= amount, "insufficient balance");
        _beforeBalanceChange(from);
        _beforeBalanceChange(to);
        balanceOf[from] = balance - amount;
        balanceOf[to] += amount;
        _afterBalanceChange(from);
        _afterBalanceChange(to);
        emit Transfer(from, to, amount);
    }

    function _mint(address to, uint256 amount) internal {
        require(to != address(0), "mint to zero address");
        _beforeBalanceChange(to);
        totalSupply += amount;
        balanceOf[to] += amount;
        _afterBalanceChange(to);
        emit Transfer(address(0), to, amount);
    }

    function _burn(address from, uint256 amount) internal {
        uint256 balance = balanceOf[from];
        require(balance >= amount, "insufficient balance");
        _beforeBalanceChange(from);
        balanceOf[from] = balance - amount;
        totalSupply -= amount;
        _afterBalanceChange(from);
        emit Transfer(from, address(0), amount);
    }

    function _beforeBalanceChange(address account) internal virtual {}

    function _afterBalanceChange(address account) internal virtual {}
}
