package azureaci

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/azure"
)

func init() {
	resource.Register(resource.Plugin{Type: "azure_aci", Schema: descr.SchemaOf[Settings](), New: New})
}

// Settings are the keys of an azure_aci resource section, as Occopus and
// its tutorials write them: the connection New reads, and the instance
// keys Create reads from each spec's rendered section.
type Settings struct {
	azure.Connection
	Instance
}

// Instance says what container group to make. The container's
// environment and command come from the docker contextualisation
// section.
type Instance struct {
	Location string       `occopus:"location,required"`
	CPUCores azure.Number `occopus:"cpu_cores,required"`
	// Memory is in GB.
	Memory azure.Number `occopus:"memory,required"`
	Image  string       `occopus:"image,required"`
	// OSType is linux or windows (any case).
	OSType string `occopus:"os_type,required"`
	// NetworkType is public (a public IP and a DNS label) or private (a
	// subnet delegated to container groups), any case.
	NetworkType string `occopus:"network_type,required"`
	Ports       Ports  `occopus:"ports"`
	// GPUType is K80, P100 or V100; GPUCount defaults to 1 with it.
	GPUType  string `occopus:"gpu_type"`
	GPUCount int    `occopus:"gpu_count"`
	// VNetName and SubnetName name the user's network of a private group
	// (the subnet must be delegated to Microsoft.ContainerInstance/
	// containerGroups); without them one is made for the group.
	VNetName   string `occopus:"vnet_name"`
	SubnetName string `occopus:"subnet_name"`
}

// Port is one port of the group: a number, TCP unless "80/UDP".
type Port struct {
	Number int
	UDP    bool
}

// Ports are the group's ports: numbers, or "80/UDP" / "80/TCP".
type Ports []Port

// SettingType implements descr.Setting: a list of single values (the
// tutorials write numbers).
func (Ports) SettingType() descr.Type { return descr.ListOf(descr.Scalar) }

// DecodeSetting implements descr.Setting.
func (p *Ports) DecodeSetting(path string, v any) error {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	out := make(Ports, 0, len(list))
	for i, x := range list {
		at := fmt.Sprintf("%s[%d]", path, i)
		s := strings.TrimSpace(fmt.Sprint(x))
		num, proto, hasProto := strings.Cut(s, "/")
		port := Port{}
		if hasProto {
			switch strings.ToUpper(proto) {
			case "TCP":
			case "UDP":
				port.UDP = true
			default:
				return &descr.Error{Path: at, Msg: fmt.Sprintf("%q: the protocol is TCP or UDP", s)}
			}
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 {
			return &descr.Error{Path: at, Msg: fmt.Sprintf("%q is not a port (1-65535, optionally /TCP or /UDP)", s)}
		}
		port.Number = n
		out = append(out, port)
	}
	*p = out
	return nil
}
