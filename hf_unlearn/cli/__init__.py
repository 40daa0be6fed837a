"""The command line: `hf-unlearn unlearn` stage by stage, its flags and up-front checks, and the other `hf-unlearn` commands. Imports nothing from the benchmark."""
