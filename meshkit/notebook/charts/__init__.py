"""Charts (and the controls that go with them) for the lessons: one module per group of notebooks."""
