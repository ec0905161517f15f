package zkcoord

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/coordkit/coord"
)

// ExpireSession makes the server end the ZooKeeper session of one of this
// client's coord sessions, as if its process had died: it attaches to the
// session from a second connection (with the session's ID and password) and
// sends closeSession, the way Curator's test KillSession does. The server
// deletes the session's ephemeral nodes at once; the owner's connection is
// closed by the server and, on reconnecting, hears that the session expired.
//
// Only sessions made by a client from Open can be expired (their password is
// known to coord); New's shared session returns coord.ErrUnsupported.
func (c *client) ExpireSession(ctx context.Context, id string) error {
	if !c.owned {
		return fmt.Errorf("zkcoord: ExpireSession: sessions on a user's connection share its ZooKeeper session: %w", coord.ErrUnsupported)
	}
	var tr *tracker
	c.mu.Lock()
	for s := range c.sessions {
		if s.id == id {
			tr = s.tr
		}
	}
	c.mu.Unlock()
	if tr == nil {
		return fmt.Errorf("zkcoord: ExpireSession: session %s is not a live session of this client", id)
	}
	sid, passwd, timeout := tr.session()
	var errs []error
	for _, addr := range c.servers {
		err := closeRemote(ctx, addr, c.tls, sid, passwd, timeout)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("zkcoord: expire session %s: %w", id, errors.Join(errs...))
}

// closeRemote speaks just enough of ZooKeeper's protocol to attach to a
// session and close it: a connect request carrying the session's ID and
// password, then closeSession (opcode -11), pipelined in one write.
func closeRemote(ctx context.Context, addr string, tc *tls.Config, sid int64, passwd []byte, timeout time.Duration) error {
	var conn net.Conn
	var err error
	d := &net.Dialer{}
	if tc != nil {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)

	var req []byte
	req = binary.BigEndian.AppendUint32(req, 0) // protocol version
	req = binary.BigEndian.AppendUint64(req, 0) // last zxid seen
	req = binary.BigEndian.AppendUint32(req, uint32(timeout.Milliseconds()))
	req = binary.BigEndian.AppendUint64(req, uint64(sid))
	req = binary.BigEndian.AppendUint32(req, uint32(len(passwd)))
	req = append(req, passwd...)
	var closeReq []byte
	closeReq = binary.BigEndian.AppendUint32(closeReq, 1) // xid
	closeReq = binary.BigEndian.AppendUint32(closeReq, opCloseSession)
	if _, err := conn.Write(append(frame(req), frame(closeReq)...)); err != nil {
		return err
	}
	resp, err := readFrame(conn)
	if err != nil {
		return fmt.Errorf("connect response: %w", err)
	}
	if got, _, _, ok := parseConnectResponse(resp); !ok {
		return fmt.Errorf("malformed connect response")
	} else if got == 0 {
		return nil // already expired
	}
	for {
		reply, err := readFrame(conn)
		if err != nil {
			return fmt.Errorf("closeSession reply: %w", err)
		}
		if len(reply) < 16 {
			return fmt.Errorf("short reply")
		}
		if xid := int32(binary.BigEndian.Uint32(reply)); xid != 1 {
			continue // a ping or notification
		}
		if code := int32(binary.BigEndian.Uint32(reply[12:])); code != 0 {
			return fmt.Errorf("closeSession: ZooKeeper error code %d", code)
		}
		return nil
	}
}

func frame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 1<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// opCloseSession is ZooKeeper's closeSession opcode (-11) as sent on the wire.
const opCloseSession = 0xFFFFFFF5
