package descr

import "github.com/occopus-go/occopus/internal/yamldiag"

// diagnoseYAML places the fault of YAML the parser refused (a tab in the
// indentation, a bad indentation, a missing ':', an unclosed quote or
// bracket); nil when it cannot be told.
func diagnoseYAML(file string, src []byte) *Error {
	e := yamldiag.Diagnose(file, src)
	if e == nil {
		return nil
	}
	return &Error{Pos: Pos{File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col}, Msg: e.Msg}
}

// YAMLError explains why src, which the YAML parser refused with err, is
// not valid YAML, at the fault's line and column when they can be told.
func YAMLError(file string, src []byte, err error) error {
	if e := diagnoseYAML(file, src); e != nil {
		return e
	}
	return yamlError(file, err).Err()
}
