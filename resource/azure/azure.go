// Package azure is what the Azure backends (resource/azurevm, `type:
// azure_vm`, and resource/azureaci, `type: azure_aci`) share: the
// credentials and the clouds they are used against, tags and names, and
// the glue between the official Azure SDK and internal/cloudapi.
//
// Credentials are Occopus's: an auth_data entry with tenant_id,
// client_id, client_secret and subscription_id (a service principal),
// used through azidentity.NewClientSecretCredential.
//
// Two clouds are configured, apart, as the SDK intends:
//
//   - the Entra ID authority of the credential: $AZURE_AUTHORITY_HOST (the
//     SDK's own convention), else the public cloud's
//     https://login.microsoftonline.com/. For an authority that is not one
//     of Microsoft's (Azure Stack, a test server) MSAL's instance discovery,
//     which asks login.microsoftonline.com about the authority, is off
//     (DisableInstanceDiscovery);
//   - Azure Resource Manager: the resource section's `endpoint` (the
//     tutorials' https://management.azure.com), so that sovereign clouds
//     and test servers work, with its token audience: the public,
//     US Government and China clouds' known audiences for their endpoints,
//     the endpoint itself for any other.
//
// TLS trust comes from the system store (SSL_CERT_FILE and SSL_CERT_DIR
// work). Every HTTP request — token requests, ARM calls, polls of
// long-running operations, pages of listings — goes through a
// cloudapi.Transport (the Manager's per-endpoint rate limit); the SDK's
// own retry policy is off (MaxRetries -1), and every call runs in a
// cloudapi.Caller, which retries throttling (429, honouring Retry-After),
// 5xx and lost connections with its own backoff, counted once, and
// returns one *cloudapi.Error naming the node, the backend, the endpoint
// and Azure's error code and message, with the client secret (and the
// VM's admin password) removed.
//
// Everything made for a node carries the tags occopus_infra_id,
// occopus_node_id and occopus_node_name (ARM tag names may not contain
// < > % & \ ? /, so not EC2's occopus:infra_id form; names up to 512
// characters, values up to 256, at most 50 tags). Names derive from the
// infra id and node id, so a retried PUT (create-or-update by name) never
// makes a second resource, and Find/List look resources up by tag.
package azure

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"unicode"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/descr"
)

// Tags put on every resource the backends make (subnets, which ARM does
// not tag, are found through their tagged virtual network or NIC).
const (
	TagInfraID  = "occopus_infra_id"
	TagNodeID   = "occopus_node_id"
	TagNodeName = "occopus_node_name"
	// TagStoreID names the store that made the resource (when it has an
	// id), so that a sweep for orphans tells this store's from another's.
	TagStoreID = "occopus_store_id"
)

// NameMax is the longest VM or container group name: Azure allows 64
// characters for a Linux VM (63 for a container group), and the names
// derived from it (<name>-vnet: virtual networks allow 64) must fit too.
const NameMax = 59

// MaxTagValue is ARM's limit on a tag value.
const MaxTagValue = 256

// Connection are the resource keys both backends read in New: where ARM
// is and which resource group holds what they make (created when missing,
// never deleted).
type Connection struct {
	Endpoint      string `occopus:"endpoint,required"`
	ResourceGroup string `occopus:"resource_group,required"`
}

// Credentials are the keys of an azure_vm or azure_aci auth_data entry.
type Credentials struct {
	TenantID       string      `occopus:"tenant_id"`
	ClientID       string      `occopus:"client_id"`
	ClientSecret   auth.Secret `occopus:"client_secret"`
	SubscriptionID string      `occopus:"subscription_id"`
}

// credentialsFrom decodes and checks an auth_data entry.
func credentialsFrom(provider, endpoint string, authData map[string]any) (Credentials, error) {
	hint := fmt.Sprintf("auth_data.yaml needs an entry with `type: %s` whose auth_data has tenant_id, client_id, client_secret and subscription_id (a service principal)", provider)
	if authData == nil {
		return Credentials{}, fmt.Errorf("%s: no credentials for endpoint %s: %s", provider, endpoint, hint)
	}
	var c Credentials
	if err := descr.Decode("auth_data", authData, &c); err != nil {
		return Credentials{}, fmt.Errorf("%s: credentials for endpoint %s: %w", provider, endpoint, err)
	}
	var missing []string
	for _, f := range []struct{ key, v string }{{"tenant_id", c.TenantID}, {"client_id", c.ClientID},
		{"client_secret", string(c.ClientSecret)}, {"subscription_id", c.SubscriptionID}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.key)
		}
	}
	if len(missing) > 0 {
		return Credentials{}, fmt.Errorf("%s: credentials for endpoint %s lack %s (%s)", provider, endpoint, strings.Join(missing, ", "), hint)
	}
	// Both end up in URL paths; ARM and Entra accept nothing else there.
	for _, f := range []struct{ key, v string }{{"tenant_id", c.TenantID}, {"subscription_id", c.SubscriptionID}} {
		if strings.IndexFunc(f.v, func(r rune) bool { return !(r == '-' || r == '.' || isAlnum(r)) }) >= 0 {
			return Credentials{}, fmt.Errorf("%s: credentials for endpoint %s: %s %q is not an id (letters, digits, '-' and '.')", provider, endpoint, f.key, f.v)
		}
	}
	return c, nil
}

func isAlnum(r rune) bool { return r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) }

// EnvAuthorityHost is the SDK's variable naming the Entra ID authority.
const EnvAuthorityHost = "AZURE_AUTHORITY_HOST"

// microsoftAuthorities are the Entra ID hosts MSAL knows; for any other,
// instance discovery (a call to login.microsoftonline.com about it) is off.
var microsoftAuthorities = map[string]bool{
	"login.microsoftonline.com": true, "login.microsoft.com": true, "login.windows.net": true, "sts.windows.net": true,
	"login.microsoftonline.us": true, "login-us.microsoftonline.com": true, "login.usgovcloudapi.net": true,
	"login.chinacloudapi.cn": true, "login.partner.microsoftonline.cn": true, "login.microsoftonline.de": true,
}

// Clouds are the two cloud configurations of a handler.
type Clouds struct {
	// Entra is the credential's: the authority host only.
	Entra cloud.Configuration
	// ARM is the clients': the resource endpoint and its token audience.
	ARM cloud.Configuration
	// DisableInstanceDiscovery is set for an authority that is not
	// Microsoft's.
	DisableInstanceDiscovery bool
	// Endpoint is the ARM base URL without a trailing slash; Audience the
	// token audience (the token scope is Audience + "/.default").
	Endpoint, Audience string
}

// CloudsFor builds the configurations for an ARM endpoint and an
// authority ("" is $AZURE_AUTHORITY_HOST, else the public cloud's).
func CloudsFor(endpoint, authority string) (Clouds, error) {
	ep, err := httpsBase(endpoint)
	if err != nil {
		return Clouds{}, fmt.Errorf("endpoint %q is not the https URL of Azure Resource Manager (e.g. https://management.azure.com): %v", endpoint, err)
	}
	if authority == "" {
		authority = os.Getenv(EnvAuthorityHost)
	}
	if authority == "" {
		authority = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	au, err := httpsBase(authority)
	if err != nil {
		return Clouds{}, fmt.Errorf("the Entra ID authority %q (%s) is not an https URL: %v", authority, EnvAuthorityHost, err)
	}
	c := Clouds{Endpoint: ep, Audience: ep}
	for _, known := range []cloud.Configuration{cloud.AzurePublic, cloud.AzureGovernment, cloud.AzureChina} {
		if rm, ok := known.Services[cloud.ResourceManager]; ok && sameHost(rm.Endpoint, ep) {
			c.Audience = rm.Audience
		}
	}
	host := strings.ToLower(mustHost(au))
	c.DisableInstanceDiscovery = !microsoftAuthorities[host]
	c.Entra = cloud.Configuration{ActiveDirectoryAuthorityHost: au + "/"}
	c.ARM = cloud.Configuration{
		ActiveDirectoryAuthorityHost: au + "/",
		Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: ep, Audience: c.Audience}},
	}
	return c, nil
}

// httpsBase checks an https URL and returns scheme://host[/path] without
// a trailing slash, query or fragment.
func httpsBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if u.Scheme != "https" || u.Host == "" {
		return "", errors.New("want https://host")
	}
	if u.User != nil {
		return "", errors.New("credentials in the URL")
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimRight(u.String(), "/"), nil
}

func mustHost(base string) string {
	u, _ := url.Parse(base)
	return u.Hostname()
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && strings.EqualFold(ua.Host, ub.Host)
}

// Tags are the tags of everything made for one node; storeID "" (a store
// without an id) is left out.
func Tags(infraID, nodeID, nodeName, storeID string) map[string]*string {
	cut := func(s string) *string {
		if len(s) > MaxTagValue {
			s = s[:MaxTagValue]
		}
		return &s
	}
	tags := map[string]*string{TagInfraID: cut(infraID), TagNodeID: cut(nodeID), TagNodeName: cut(nodeName)}
	if storeID != "" {
		tags[TagStoreID] = cut(storeID)
	}
	return tags
}

// TagValue reads one tag of a resource ("" when absent). ARM tag names
// are case-insensitive.
func TagValue(tags map[string]*string, name string) string {
	for k, v := range tags {
		if strings.EqualFold(k, name) && v != nil {
			return *v
		}
	}
	return ""
}

// UniqueName is the name Occopus gives a node's VM or container group,
// occopus-<infra name[:18]>-<infra id[:8]>-<node name[:18]>-<node id[:8]>,
// kept to max characters (the infra name is cut first, then the node
// name; the ids stay whole, so that two nodes never share a name) and to
// what ARM allows in names: letters, digits and single hyphens, no
// hyphen at either end. lower lowercases it (container groups and DNS
// labels take lowercase only). An empty infra name leaves its part out.
func UniqueName(infraName, infraID, nodeName, nodeID string, max int, lower bool) string {
	clean := func(s string, n int) string {
		var b strings.Builder
		for _, r := range s {
			switch {
			case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
				if lower {
					r = unicode.ToLower(r)
				}
				b.WriteRune(r)
			case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
				b.WriteByte('-')
			}
		}
		out := b.String()
		if len(out) > n {
			out = out[:n]
		}
		return strings.Trim(out, "-")
	}
	infra, node := clean(infraName, 18), clean(nodeName, 18)
	iid, nid := clean(infraID, 8), clean(nodeID, 8)
	join := func() string {
		parts := []string{"occopus"}
		for _, p := range []string{infra, iid, node, nid} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		return strings.Join(parts, "-")
	}
	for len(join()) > max && (infra != "" || len(node) > 1) {
		if infra != "" {
			infra = strings.Trim(infra[:len(infra)-1], "-")
		} else {
			node = strings.Trim(node[:len(node)-1], "-")
		}
	}
	name := join()
	if len(name) > max {
		name = strings.Trim(name[:max], "-")
	}
	return name
}

// YesNo is a flag as Occopus's descriptions write it: yes/no,
// true/false, on/off, 1/0; empty is no. Any single value passes
// validation (a tutorial's placeholder too); Create refuses the others.
type YesNo bool

// SettingType implements descr.Setting: a single value.
func (YesNo) SettingType() descr.Type { return descr.Scalar }

// DecodeSetting implements descr.Setting.
func (y *YesNo) DecodeSetting(path string, v any) error {
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
		*y = false
		return nil
	}
	var b bool
	if descr.DecodeValue(path, v, &b) != nil {
		return &descr.Error{Path: path, Msg: fmt.Sprintf("%v is not yes/no or true/false", v)}
	}
	*y = YesNo(b)
	return nil
}

// Number is a quantity (cpu_cores, memory) that validation takes in any
// form, so that a tutorial's placeholder (replace_with_memory) passes
// `validate` as Occopus lets it; Create refuses what is not a positive
// number, naming the key.
type Number float64

// SettingType implements descr.Setting: a single value.
func (Number) SettingType() descr.Type { return descr.Scalar }

// DecodeSetting implements descr.Setting.
func (n *Number) DecodeSetting(path string, v any) error {
	var f float64
	if descr.DecodeValue(path, v, &f) != nil || f <= 0 || f > 1e6 {
		return &descr.Error{Path: path, Msg: fmt.Sprintf("%v is not a positive number", v)}
	}
	*n = Number(f)
	return nil
}
