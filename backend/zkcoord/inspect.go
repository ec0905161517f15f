package zkcoord

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// Contenders counts the contender nodes (held or waiting) recipe keeps for
// name among the children of /<chroot>/<ns>/<recipe>/<name>: for "lock",
// "election", "rwlock" and "semaphore" the protected contender nodes of that
// recipe, for "barrier" the double-barrier participants (not the #hold and
// #ready nodes); for another recipe every child.
func (c *client) Contenders(ctx context.Context, recipe, name string) (int, error) {
	dir := c.recipePath(recipe, name)
	children, err := run(ctx, nil, func() ([]string, error) {
		ch, _, err := c.conn.Children(dir)
		return ch, err
	}, nil)
	if errors.Is(err, zk.ErrNoNode) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("zkcoord: list %s: %w", dir, err)
	}
	switch recipe {
	case "lock":
		return len(contenders(children)), nil
	case "election":
		return len(queueOf(children, kindElect)), nil
	case "rwlock":
		return len(queueOf(children, kindRead, kindWrite)), nil
	case "semaphore":
		return len(queueOf(children, kindSem)), nil
	case "barrier":
		n, _ := participants(children)
		return n, nil
	}
	return len(children), nil
}
