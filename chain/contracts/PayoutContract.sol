// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

interface IPayoutAssetToken {
    function maturityDate() external view returns (uint256);
    function balanceOf(address account) external view returns (uint256);
    function redeem(address holder, uint256 amount) external;
}

interface IPayoutPaymentToken {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
}

/// @title PayoutContract: holds payment tokens for one asset and pays its holders in batches.
/// @notice The on-chain half of "never pay twice": a holder is paid at most once per distribution,
/// a batch id executes at most once, and a distribution never pays more than the total its first
/// batch registered (immutable afterwards). A bond cash-out pays exactly for the tokens it burns.
/// Each holder's outcome is reported by an event.
contract PayoutContract {
    uint8 public constant REASON_INSUFFICIENT_BALANCE = 1;
    uint8 public constant REASON_ALREADY_PAID = 2;
    uint8 public constant REASON_TRANSFER_FAILED = 3;
    uint8 public constant REASON_EXCEEDS_TOTAL = 4;
    uint8 public constant REASON_INSUFFICIENT_HOLDING = 5;

    address public immutable assetToken;
    address public immutable paymentToken;
    address public admin;
    bool public paused;

    mapping(address => bool) public hasPayoutRole;
    mapping(bytes32 => bool) public batchExecuted;
    mapping(bytes32 => mapping(address => bool)) public isPaid;
    mapping(bytes32 => uint256) public paidHoldersCount;
    mapping(bytes32 => uint256) public paidTotal;
    mapping(bytes32 => uint256) public distributionTotal;

    event HolderPaid(bytes32 indexed distributionId, bytes32 indexed batchId, address indexed holder, uint256 amount);
    event HolderPaymentFailed(
        bytes32 indexed distributionId, bytes32 indexed batchId, address indexed holder, uint256 amount, uint8 reason
    );
    event PayoutCompleted(bytes32 indexed batchId, uint256 successfulPayments, uint256 failedPayments);
    event DistributionRegistered(bytes32 indexed distributionId, uint256 totalAmount, uint256 holdersCount);
    event DistributionExecuted(bytes32 indexed distributionId, uint256 totalAmount, uint256 holdersCount);
    event PayoutRoleGranted(address indexed account);
    event PayoutRoleRevoked(address indexed account);
    event Paused(address account);
    event Unpaused(address account);
    event FundsWithdrawn(address indexed to, uint256 amount);

    modifier onlyAdmin() {
        require(msg.sender == admin, "only admin");
        _;
    }

    constructor(address assetToken_, address paymentToken_, address admin_) {
        require(assetToken_ != address(0) && paymentToken_ != address(0) && admin_ != address(0), "zero address");
        // A low-level call to an address without code "succeeds": the token must be a contract.
        require(paymentToken_.code.length > 0, "payment token is not a contract");
        assetToken = assetToken_;
        paymentToken = paymentToken_;
        admin = admin_;
        hasPayoutRole[admin_] = true;
        emit PayoutRoleGranted(admin_);
    }

    function grantPayoutRole(address account) external onlyAdmin {
        hasPayoutRole[account] = true;
        emit PayoutRoleGranted(account);
    }

    function revokePayoutRole(address account) external onlyAdmin {
        hasPayoutRole[account] = false;
        emit PayoutRoleRevoked(account);
    }

    function pause() external onlyAdmin {
        paused = true;
        emit Paused(msg.sender);
    }

    function unpause() external onlyAdmin {
        paused = false;
        emit Unpaused(msg.sender);
    }

    /// The admin takes payment tokens back (leftovers, a cancelled distribution's funds).
    function withdraw(address to, uint256 amount) external onlyAdmin {
        require(to != address(0), "zero address");
        require(_transferPayment(to, amount), "transfer failed");
        emit FundsWithdrawn(to, amount);
    }

    function executeBatch(
        bytes32 distributionId,
        bytes32 batchId,
        uint256 totalAmount,
        uint256 distributionHoldersCount,
        address[] calldata holders,
        uint256[] calldata amounts
    ) external {
        _register(distributionId, totalAmount, distributionHoldersCount);
        _execute(distributionId, batchId, distributionHoldersCount, holders, amounts, new uint256[](0));
    }

    /// Pays principal and redeems (burns) exactly `tokenAmounts[i]` of each paid holder's bonds; only
    /// at maturity. A holder who holds fewer tokens than that is not paid (REASON_INSUFFICIENT_HOLDING).
    function executeBondCashOut(
        bytes32 distributionId,
        bytes32 batchId,
        uint256 totalAmount,
        uint256 distributionHoldersCount,
        address[] calldata holders,
        uint256[] calldata amounts,
        uint256[] calldata tokenAmounts
    ) external {
        uint256 maturity = IPayoutAssetToken(assetToken).maturityDate();
        require(maturity != 0 && block.timestamp >= maturity, "bond not matured");
        require(tokenAmounts.length == holders.length, "lengths differ");
        _register(distributionId, totalAmount, distributionHoldersCount);
        _execute(distributionId, batchId, distributionHoldersCount, holders, amounts, tokenAmounts);
    }

    /// The paired effects of one cash-out, in a call of its own so that they happen together or not at
    /// all: burn exactly `tokenAmount`, pay `amount`. Only this contract may call it.
    function settleCashOut(address holder, uint256 amount, uint256 tokenAmount) external {
        require(msg.sender == address(this), "internal");
        IPayoutAssetToken(assetToken).redeem(holder, tokenAmount);
        require(_transferPayment(holder, amount), "transfer failed");
    }

    /// The first batch of a distribution registers its total and holder count; later batches must
    /// repeat them (the total can never be raised).
    function _register(bytes32 distributionId, uint256 totalAmount, uint256 holdersCount) private {
        require(!paused, "paused");
        require(hasPayoutRole[msg.sender], "caller lacks PAYOUT_ROLE");
        require(totalAmount > 0, "zero total");
        uint256 registered = distributionTotal[distributionId];
        if (registered == 0) {
            distributionTotal[distributionId] = totalAmount;
            emit DistributionRegistered(distributionId, totalAmount, holdersCount);
        } else {
            require(registered == totalAmount, "distribution total differs");
        }
    }

    function _execute(
        bytes32 distributionId,
        bytes32 batchId,
        uint256 distributionHoldersCount,
        address[] calldata holders,
        uint256[] calldata amounts,
        uint256[] memory tokenAmounts
    ) private {
        require(holders.length == amounts.length, "lengths differ");
        require(!batchExecuted[batchId], "batch already executed");
        batchExecuted[batchId] = true;

        uint256 succeeded = 0;
        uint256 failed = 0;
        bool cashOut = tokenAmounts.length > 0;
        for (uint256 i = 0; i < holders.length; i++) {
            uint8 reason = _payHolder(distributionId, holders[i], amounts[i], cashOut, cashOut ? tokenAmounts[i] : 0);
            if (reason == 0) {
                succeeded++;
                emit HolderPaid(distributionId, batchId, holders[i], amounts[i]);
            } else {
                failed++;
                emit HolderPaymentFailed(distributionId, batchId, holders[i], amounts[i], reason);
            }
        }
        emit PayoutCompleted(batchId, succeeded, failed);

        if (succeeded > 0 && paidHoldersCount[distributionId] == distributionHoldersCount) {
            emit DistributionExecuted(distributionId, paidTotal[distributionId], distributionHoldersCount);
        }
    }

    /// Returns 0 when paid, else the failure reason.
    function _payHolder(bytes32 distributionId, address holder, uint256 amount, bool cashOut, uint256 tokenAmount)
        private
        returns (uint8)
    {
        if (isPaid[distributionId][holder]) {
            return REASON_ALREADY_PAID;
        }
        if (paidTotal[distributionId] + amount > distributionTotal[distributionId]) {
            return REASON_EXCEEDS_TOTAL;
        }
        if (IPayoutPaymentToken(paymentToken).balanceOf(address(this)) < amount) {
            return REASON_INSUFFICIENT_BALANCE;
        }
        if (cashOut && IPayoutAssetToken(assetToken).balanceOf(holder) < tokenAmount) {
            return REASON_INSUFFICIENT_HOLDING;
        }
        // Effects before the external calls: a re-entrant call sees the holder as paid.
        isPaid[distributionId][holder] = true;
        paidTotal[distributionId] += amount;
        bool ok;
        if (cashOut) {
            try this.settleCashOut(holder, amount, tokenAmount) {
                ok = true;
            } catch {
                ok = false;
            }
        } else {
            ok = _transferPayment(holder, amount);
        }
        if (!ok) {
            isPaid[distributionId][holder] = false;
            paidTotal[distributionId] -= amount;
            return REASON_TRANSFER_FAILED;
        }
        paidHoldersCount[distributionId] += 1;
        return 0;
    }

    /// `transfer` through a low-level call: tokens that return `true`, and tokens that return nothing
    /// (USDT-style), succeed; a revert, `false` or anything else fails. Never reverts itself.
    function _transferPayment(address to, uint256 amount) private returns (bool) {
        (bool ok, bytes memory result) =
            paymentToken.call(abi.encodeWithSelector(IPayoutPaymentToken.transfer.selector, to, amount));
        if (!ok) {
            return false;
        }
        if (result.length == 0) {
            return true;
        }
        return result.length >= 32 && abi.decode(result, (uint256)) == 1;
    }
}
