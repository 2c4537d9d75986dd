"""Blockchain adapters: JSON-RPC, Hedera Mirror Node, signers, nonces, ABIs, event listeners."""
