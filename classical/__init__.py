"""Non-learned signal processing the papers measure against: MIMO channels and pilots, sum rates,
codebook limited feedback, block-diagonalization precoding (Kong et al.), WMMSE / ZF / SLNR
(Zhang et al.)."""
