package descr_test

import (
	"testing"

	"github.com/occopus-go/occopus/descr"
	_ "github.com/occopus-go/occopus/plugins/standard"
)

// FuzzLoad feeds arbitrary bytes to the YAML loader and both decoders:
// they may reject the input, never panic or hang.
// Run on purpose: go test -run=^$ -fuzz=FuzzLoad -fuzztime=5m ./descr
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"infra_name: x\nnodes:\n  - &A {name: a, type: t}\n  - {name: b, type: t}\ndependencies:\n  - [*A, b]\n",
		"'node_def:t':\n  - resource: {type: docker, image: busybox}\n    contextualisation: {type: docker, command: 'sh -c {{ name }}'}\n",
		"a: &x [1, 2, *x]\n",
		"<<: {a: 1}\nb: !yaml_import {url: file://nothing.yaml}\n",
		"x: !text_import\n  url: '  file:///etc/hostname  '\n",
		"- [ ]\n- {}\n- !!str 12\n- 0o17\n- yes\n- .inf\n",
		"'node_def:t': []\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		root, err := descr.Parse("fuzz.yaml", src, descr.LoadOptions{NoImports: true})
		if err != nil {
			if len(descr.AsErrors(err)) == 0 {
				t.Fatal("error without entries")
			}
			return
		}
		_ = root.Interface()
		switch descr.Detect(root) {
		case descr.InfraFile:
			_, _ = descr.DecodeInfra("fuzz.yaml", root)
		case descr.NodeDefFile:
			_, _ = descr.DecodeNodeDefs("fuzz.yaml", root)
		}
	})
}
