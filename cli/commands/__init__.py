"""One module per command; this table is the list of commands (``main`` loads each on first use,
so ``modelsurgeon --version`` starts without numpy or h5py). Each module defines ``command``."""

#: command name -> module in this package
COMMANDS = {"inspect": "inspect", "diff": "diff", "run": "run", "rename": "rename",
            "replace-head": "replace_head", "convert": "convert", "zoo": "zoo", "graph": "graph",
            "select": "select", "average": "average", "adapt-input": "adapt_input",
            "resize-embedding": "resize_embedding", "fit": "fit"}
