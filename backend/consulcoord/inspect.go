package consulcoord

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
)

// Contenders counts the entries (held or waiting) that recipe keeps for name:
// the keys directly under "<root>/<recipe>/<name>/". Recipes: "lock",
// "election" (candidacies), "rwlock" (readers and writers), "semaphore"
// (holders and waiters) and "barrier" (double-barrier participants; the
// ready marker and single barriers live elsewhere and are not counted).
func (c *client) Contenders(ctx context.Context, recipe, name string) (int, error) {
	if err := coord.ValidateName(name); err != nil {
		return 0, err
	}
	prefix := c.recipePrefix(recipe, name)
	keys, _, err := c.cli.KV().Keys(prefix, "", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, c.failed("list "+prefix, err)
	}
	n := 0
	for _, k := range keys {
		if rest, ok := strings.CutPrefix(k, prefix); ok && rest != "" && !strings.Contains(rest, "/") {
			n++
		}
	}
	return n, nil
}

// ExpireSession destroys the session with the given ID on the server: a real
// server-side invalidation, exactly what happens when its TTL runs out (its
// keys are deleted and its owner sees the session lost).
func (c *client) ExpireSession(ctx context.Context, id string) error {
	if _, err := c.cli.Session().Destroy(id, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return c.failed(fmt.Sprintf("destroy session %s", id), err)
	}
	return nil
}
