package ec2

import (
	"fmt"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

func init() {
	resource.Register(resource.Plugin{Type: "ec2", Schema: descr.SchemaOf[Settings](), New: New})
}

// Settings are the keys of an ec2 resource section (see the package
// documentation): the connection New reads, and the instance keys Create
// reads from each spec's rendered section.
type Settings struct {
	Connection
	Instance
	// Name selects the auth_data entry.
	Name string `occopus:"name"`
}

// Connection says which EC2 interface to talk to.
type Connection struct {
	Endpoint string `occopus:"endpoint,required"`
	Region   string `occopus:"regionname,required"`
}

// Instance says what to run.
type Instance struct {
	ImageID          string   `occopus:"image_id,required"`
	InstanceType     string   `occopus:"instance_type,required"`
	KeyName          string   `occopus:"key_name"`
	SecurityGroupIDs GroupIDs `occopus:"security_group_ids"`
	SubnetID         string   `occopus:"subnet_id"`
	Tags             Tags     `occopus:"tags"`
}

// Credentials are the keys of an ec2 auth_data entry.
type Credentials struct {
	AccessKey string      `occopus:"accesskey"`
	SecretKey auth.Secret `occopus:"secretkey"`
}

// GroupIDs are security group ids: strings only, since a number there is
// a mistake EC2 would answer less helpfully. One id is a list of one.
type GroupIDs []string

// SettingType implements descr.Setting: a list of strings.
func (GroupIDs) SettingType() descr.Type { return descr.ListOf(descr.String) }

// DecodeSetting implements descr.Setting.
func (g *GroupIDs) DecodeSetting(path string, v any) error {
	if _, ok := v.(map[string]any); ok {
		return &descr.Error{Path: path, Msg: "must be a list of security group ids, not a mapping"}
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	out := make(GroupIDs, 0, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			return &descr.Error{Path: fmt.Sprintf("%s[%d]", path, i), Msg: fmt.Sprintf("must be a security group id (a string), not %T %v", x, x)}
		}
		out = append(out, s)
	}
	*g = out
	return nil
}

// Tags are extra instance tags; values are written as text.
type Tags map[string]string

// SettingType implements descr.Setting: any mapping.
func (Tags) SettingType() descr.Type { return descr.AnyMap }

// DecodeSetting implements descr.Setting.
func (t *Tags) DecodeSetting(path string, v any) error {
	if _, ok := v.(map[string]any); !ok {
		return fmt.Errorf("tags must be a map of tag names to values, not %T", v)
	}
	var m map[string]string
	if err := descr.DecodeValue(path, v, &m); err != nil {
		return err
	}
	*t = m
	return nil
}
