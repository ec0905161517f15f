package coord

import (
	"fmt"
	"strings"
)

// MaxNameLen is the longest name coord accepts, in bytes.
const MaxNameLen = 200

// ValidateName checks a recipe name (lock, election, queue, key, service):
// 1 to MaxNameLen bytes of letters, digits and . _ - : @ = +, with '/'
// allowed only between non-empty segments, and no "." or ".." segment. These
// names are stored safely by every backend (etcd and Consul keys, ZooKeeper
// paths, Redis keys) and cannot escape coord's namespace.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: name is %d bytes, the limit is %d", ErrInvalidName, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("._-:@=+/", c) >= 0:
		default:
			return fmt.Errorf("%w: %q contains %q at byte %d (allowed: letters, digits, . _ - : @ = + and / between segments)", ErrInvalidName, name, rune(c), i)
		}
	}
	for _, seg := range strings.Split(name, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: %q has an empty segment (leading, trailing or double '/')", ErrInvalidName, name)
		case ".", "..":
			return fmt.Errorf("%w: %q has a %q segment", ErrInvalidName, name, seg)
		}
	}
	return nil
}

// ValidateNamespace checks a namespace with the rules of ValidateName.
func ValidateNamespace(ns string) error {
	if err := ValidateName(ns); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	return nil
}
