package sqlite

import (
	"testing"

	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/storetest"
)

func TestTail(t *testing.T) {
	storetest.RunTail(t, func(t *testing.T) store.Store { return openTemp(t) })
}
