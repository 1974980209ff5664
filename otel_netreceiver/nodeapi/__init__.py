"""The node API: answers a pod's "what did the node see?" about its own errors."""
