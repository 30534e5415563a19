"""The control plane: manifest sources, compiling them into routes, the route table, secrets."""
