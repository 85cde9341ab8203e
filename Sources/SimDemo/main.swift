print("mtcp-sim-demo: not yet")
