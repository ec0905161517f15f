// Package all registers every built-in coord backend's URL schemes with
// coord.Open: etcd/etcds, zk/zks, redis/rediss and consul/consuls.
//
//	import _ "github.com/coordkit/coord/backend/all"
//
// Import a single backend package instead to keep the others' client
// libraries out of a binary.
package all

import (
	// Each import registers its schemes in init.
	_ "github.com/coordkit/coord/backend/consulcoord"
	_ "github.com/coordkit/coord/backend/etcdcoord"
	_ "github.com/coordkit/coord/backend/rediscoord"
	_ "github.com/coordkit/coord/backend/zkcoord"
)
