package rest

import (
	"encoding/json"
	"testing"
)

func TestRedactValue(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"secret keys", `{"password":"p","api_key":"k","AccessKey":"a","client_secret":"s","image":"i"}`,
			`{"AccessKey":"[REDACTED]","api_key":"[REDACTED]","client_secret":"[REDACTED]","image":"i","password":"[REDACTED]"}`},
		{"values of auth_data in strings", `{"endpoint":"https://u:TOPSECRET@h/","list":["x TOPSECRET y"]}`,
			`{"endpoint":"https://u:[REDACTED]@h/","list":["x [REDACTED] y"]}`},
		{"nested and numbers", `{"a":{"token":{"x":1}},"n":3,"b":true,"z":null}`, `{"a":{"token":"[REDACTED]"},"b":true,"n":3,"z":null}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(c.in), &v); err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(redactValue(v, []string{"TOPSECRET"}))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}
