"""Training procedures shared by the command line, the zoo recipes in training/ and the benchmarks."""
