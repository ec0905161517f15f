package zkcoord

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// Contenders counts the contender nodes (held or waiting) recipe keeps for
// name: the children of /<chroot>/<ns>/<recipe>/<name> (for "lock", those
// named like contender nodes).
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
	if recipe == "lock" {
		return len(contenders(children)), nil
	}
	return len(children), nil
}
