"""The node agent: collect the node's figures and keep its ResourceReport current."""
