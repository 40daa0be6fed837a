"""What a run leaves behind as facts: the run record, the deletion ledger (Merkle commitments), public names and library versions."""
