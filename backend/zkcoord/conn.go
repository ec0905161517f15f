package zkcoord

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// tracker observes one go-zookeeper connection from below, through the
// Dialer: the time the last byte arrived from a server (the reference of the
// client-side session deadline), and the session the server granted in its
// connect response (ID, password and negotiated timeout, which go-zookeeper
// does not expose).
type tracker struct {
	tls      *tls.Config // nil for plain TCP
	lastRecv atomic.Int64

	mu      sync.Mutex
	dialErr error // the last failed dial, for error messages
	sid     int64
	passwd  []byte
	timeout time.Duration
}

func newTracker(tc *tls.Config) *tracker {
	t := &tracker{tls: tc}
	t.lastRecv.Store(time.Now().UnixNano())
	return t
}

// dial is the zk.Dialer of a connection coord made.
func (t *tracker) dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	var c net.Conn
	var err error
	if t.tls != nil {
		c, err = tls.DialWithDialer(d, network, addr, t.tls)
	} else {
		c, err = d.Dial(network, addr)
	}
	if err == nil && t.tls != nil {
		// Handshake now, within the dial timeout, so that a certificate
		// problem is reported as the dial's error.
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(timeout))
		if err = tc.Handshake(); err == nil {
			_ = tc.SetDeadline(time.Time{})
		} else {
			_ = c.Close()
		}
	}
	t.mu.Lock()
	t.dialErr = err
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: c, t: t}, nil
}

// lastDialErr is the error of the last dial, nil if it succeeded.
func (t *tracker) lastDialErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dialErr
}

// lastHeard is when a byte last arrived from a server.
func (t *tracker) lastHeard() time.Time { return time.Unix(0, t.lastRecv.Load()) }

// session returns the session granted by the last connect response.
func (t *tracker) session() (sid int64, passwd []byte, timeout time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sid, append([]byte(nil), t.passwd...), t.timeout
}

// Timeout is the negotiated session timeout (0 before the first session).
func (t *tracker) Timeout() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.timeout
}

// trackedConn records arrivals and parses the first frame of each
// connection, which is ZooKeeper's connect response:
//
//	len int32 | protocolVersion int32 | timeOut int32 | sessionId int64 | passwd (int32 len + bytes) | [readOnly bool]
//
// Reads come from one goroutine at a time (go-zookeeper's authenticate, then
// its receive loop), so hdr needs no lock.
type trackedConn struct {
	net.Conn
	t    *tracker
	hdr  []byte
	done bool
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.t.lastRecv.Store(time.Now().UnixNano())
		if !c.done {
			c.sniff(p[:n])
		}
	}
	return n, err
}

func (c *trackedConn) sniff(b []byte) {
	c.hdr = append(c.hdr, b...)
	if len(c.hdr) < 4 {
		return
	}
	size := int(binary.BigEndian.Uint32(c.hdr))
	if size > 1<<12 { // not a connect response; stop looking
		c.done, c.hdr = true, nil
		return
	}
	if len(c.hdr) < 4+size {
		return
	}
	c.done = true
	sid, passwd, timeout, ok := parseConnectResponse(c.hdr[4 : 4+size])
	c.hdr = nil
	if !ok || sid == 0 {
		return
	}
	c.t.mu.Lock()
	c.t.sid, c.t.passwd, c.t.timeout = sid, passwd, timeout
	c.t.mu.Unlock()
}

func parseConnectResponse(b []byte) (sid int64, passwd []byte, timeout time.Duration, ok bool) {
	if len(b) < 4+4+8+4 {
		return 0, nil, 0, false
	}
	timeout = time.Duration(int32(binary.BigEndian.Uint32(b[4:]))) * time.Millisecond
	sid = int64(binary.BigEndian.Uint64(b[8:]))
	n := int(int32(binary.BigEndian.Uint32(b[16:])))
	if n < 0 || len(b) < 20+n {
		return 0, nil, 0, false
	}
	return sid, append([]byte(nil), b[20:20+n]...), timeout, true
}

// nopLogger silences go-zookeeper, which logs every reconnect by default.
type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
