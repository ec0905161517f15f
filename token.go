package coord

import "strconv"

// Token is a fencing token: for one name, every successive holder gets a
// strictly greater token, so a protected resource can reject a request that
// carries a smaller token than one it has already seen. How strong that
// promise is depends on the backend (see the README's guarantees table):
// etcd and ZooKeeper tokens come from the replicated log (revision, zxid),
// Consul's from its Raft index, and Redis's from a counter on one primary,
// which an asynchronous-replication failover can move backwards.
type Token uint64

// String formats the token in decimal.
func (t Token) String() string { return strconv.FormatUint(uint64(t), 10) }
