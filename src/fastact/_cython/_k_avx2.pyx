# The Cython backend compiled for the "avx2" instruction set (flags in setup.py).
# All three variants are the same source; fastact._cython imports the best
# one the CPU supports.
include "_impl.pxi"
