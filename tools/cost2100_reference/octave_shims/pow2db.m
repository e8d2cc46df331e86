function y = pow2db(x)
  % Stand-in for the Octave Forge `signal` package's pow2db (power ratio -> dB),
  % used only when that package is not installed.  Part of mimokd (not GPL code).
  y = 10 * log10(x);
end
