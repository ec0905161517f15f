package main

// The backends coordctl can open with --backend. Replace with
// github.com/coordkit/coord/backend/all once it exists.
import (
	_ "github.com/coordkit/coord/backend/etcdcoord"
)
