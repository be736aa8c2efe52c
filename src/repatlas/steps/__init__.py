"""Pipeline steps: one module per rule file; each function reads a job's inputs, pins threads, calls
the pure code of the concept modules and writes the job's outputs atomically (repatlas.io)."""
