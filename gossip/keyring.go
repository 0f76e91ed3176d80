package gossip

import (
	"errors"
	"fmt"
)

// Key rotation, on every node: InstallKey(new) (now accepted),
// UseKey(new) (now used to encrypt), RemoveKey(old) once all nodes
// encrypt with the new key.

// InstallKey adds a key that incoming messages may be encrypted with.
func (n *Node) InstallKey(key []byte) error {
	kr := n.keyring
	if kr == nil {
		return errors.New("gossip: encryption is off (start the node with Keys to rotate keys)")
	}
	if err := kr.AddKey(key); err != nil {
		return fmt.Errorf("gossip: install key: %w", err)
	}
	return nil
}

// UseKey makes an installed key the one outgoing messages use.
func (n *Node) UseKey(key []byte) error {
	kr := n.keyring
	if kr == nil {
		return errors.New("gossip: encryption is off")
	}
	if err := kr.UseKey(key); err != nil {
		return fmt.Errorf("gossip: use key: %w", err)
	}
	return nil
}

// RemoveKey removes an installed key that is not the primary one.
func (n *Node) RemoveKey(key []byte) error {
	kr := n.keyring
	if kr == nil {
		return errors.New("gossip: encryption is off")
	}
	if err := kr.RemoveKey(key); err != nil {
		return fmt.Errorf("gossip: remove key: %w", err)
	}
	return nil
}

// Keys returns the installed keys, the primary first.
func (n *Node) Keys() [][]byte {
	kr := n.keyring
	if kr == nil {
		return nil
	}
	return kr.GetKeys()
}
