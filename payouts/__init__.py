"""Mass payouts: assets, holders, distributions, batch payouts and holder payments."""
