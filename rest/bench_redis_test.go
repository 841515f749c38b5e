package rest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store/redis"
)

// openRedis opens a Redis store under a fresh key prefix on the server of
// OCCOPUS_TEST_REDIS_ADDR (eval "$(scripts/services.sh redis)"), deleting
// its keys when the test ends. Without a server it skips, except under
// CI=true, where it fails.
func openRedis(t testing.TB) *redis.Store {
	t.Helper()
	addr := os.Getenv("OCCOPUS_TEST_REDIS_ADDR")
	if addr == "" {
		needOrSkip(t, `OCCOPUS_TEST_REDIS_ADDR unset; start a server with: eval "$(scripts/services.sh redis)"`)
	}
	db := 0
	if s := os.Getenv("OCCOPUS_TEST_REDIS_DB"); s != "" {
		var err error
		if db, err = strconv.Atoi(s); err != nil {
			t.Fatalf("OCCOPUS_TEST_REDIS_DB: %v", err)
		}
	}
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "occotest:rest:" + hex.EncodeToString(b) + ":"
	st, err := redis.Open(context.Background(), redis.Options{Addr: addr, DB: db, Password: os.Getenv("OCCOPUS_TEST_REDIS_PASS"), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := st.Client()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for i := 0; i < len(keys); i += 500 {
			c.Del(ctx, keys[i:min(i+500, len(keys))]...)
		}
		st.Close()
	})
	return st
}

// BenchmarkGetInfraRedis is BenchmarkGetInfra on a Redis store: GET
// /infrastructures/{id} over real HTTP with 1,000 stored infrastructures.
func BenchmarkGetInfraRedis(b *testing.B) {
	st := openRedis(b)
	importDefs(b, st, nodeDefs)
	benchGetInfra(b, &fixture{home: b.TempDir(), st: st, logs: &syncBuffer{}})
}
