package agent

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/ipam"
)

// apiError builds an API error naming the field.
func apiError(code, field, format string, args ...any) *api.Error {
	return &api.Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// fromIPAM turns an ipam error into an API error naming its field.
func fromIPAM(err error) error {
	var ie *ipam.Error
	if !errors.As(err, &ie) {
		return err
	}
	code := api.CodeBadRequest
	if errors.Is(err, ipam.ErrOverlap) || errors.Is(err, ipam.ErrInUse) || errors.Is(err, ipam.ErrOtherHost) || errors.Is(err, ipam.ErrExhausted) {
		code = api.CodeConflict
	}
	if side, ok := strings.CutSuffix(ie.Network, ipam.V6Suffix); ok {
		// A dual-stack network's IPv6 side: named as the API names it.
		v6 := *ie
		v6.Network = side
		switch {
		case v6.Field == "address":
			v6.Field = "ip6"
		case v6.Field == "subnet" || v6.Field == "gateway":
			v6.Field += "6"
		case v6.Field == "ip-range":
			v6.Field = "ipRange6"
		}
		ie = &v6
		err = ie
	}
	// The field as the request names it (the message keeps IPAM's words,
	// which are the CLI's flags).
	field := ie.Field
	switch {
	case (field == "address" || field == "ip6") && ie.Value == "(next free)":
		field = "network" // no address was asked for: the network has none to give here
	case field == "address" && strings.Contains(ie.Value, ":"):
		field = "ip6" // an IPv6 network's (of one subnet): asked for with --ip6
	case field == "address":
		field = "ip"
	case field == "ip-range":
		field = "ipRange"
	case strings.HasPrefix(field, "aux-address"):
		field = "auxAddresses"
	case strings.HasPrefix(field, "option"), field == "block-size":
		field = "options"
	}
	// The IPv6 side of a dual-stack network is its own IPAM network,
	// NAME#6, in IPAM's words; the user knows it as NAME.
	return &api.Error{Code: code, Field: field, Message: strings.ReplaceAll(err.Error(), ipam.V6Suffix, "")}
}
