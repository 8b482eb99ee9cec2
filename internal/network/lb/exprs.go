package lb

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Registers as nft uses them: 0 holds the verdict, 1 and 2 data.
const (
	regVerdict = 0
	reg1       = 1
	reg2       = 2
)

// Kernel constants the expressions compare with.
const (
	rtnLocal   = 2    // RTN_LOCAL: fib's address type of a local address
	ipsDstNAT  = 0x20 // IPS_DST_NAT: ct status bit of a DNATed connection
	icmpPortUn = 3    // ICMP_PORT_UNREACH
)

var protoNum = map[Protocol]byte{TCP: unix.IPPROTO_TCP, UDP: unix.IPPROTO_UDP}

// matchExprs translates one Match, the way nft would (nft --debug=netlink).
func matchExprs(m Match) []expr.Any {
	switch m := m.(type) {
	case daddrIn:
		return prefixExprs(16, m.Prefix, false)
	case saddrIn:
		return prefixExprs(12, m.Prefix, m.Not)
	case daddrLocal:
		return []expr.Any{
			&expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(rtnLocal)},
		}
	case l4proto:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{protoNum[m.Proto]}},
		}
	case iifname:
		return ifnameExprs(expr.MetaKeyIIFNAME, m.Name, m.Not)
	case oifname:
		return ifnameExprs(expr.MetaKeyOIFNAME, m.Name, false)
	case ctDNAT:
		op := expr.CmpOpNeq
		if m.Not {
			op = expr.CmpOpEq
		}
		return []expr.Any{
			&expr.Ct{Register: reg1, Key: expr.CtKeySTATUS},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
			&expr.Cmp{Op: op, Register: reg1, Data: make([]byte, 4)},
		}
	}
	panic(fmt.Sprintf("lb: no translation for match %T", m)) // every Match type is above
}

// prefixExprs compares the IPv4 address at offset in the network header
// with p.
func prefixExprs(offset uint32, p netip.Prefix, not bool) []expr.Any {
	op := expr.CmpOpEq
	if not {
		op = expr.CmpOpNeq
	}
	p = p.Masked()
	out := []expr.Any{&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if !p.IsSingleIP() {
		var mask [4]byte
		for i := range p.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		out = append(out, &expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask[:], Xor: make([]byte, 4)})
	}
	return append(out, &expr.Cmp{Op: op, Register: reg1, Data: p.Addr().AsSlice()})
}

func ifnameExprs(key expr.MetaKey, name string, not bool) []expr.Any {
	op := expr.CmpOpEq
	if not {
		op = expr.CmpOpNeq
	}
	padded := make([]byte, ifNameSize)
	copy(padded, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg1},
		&expr.Cmp{Op: op, Register: reg1, Data: padded},
	}
}

// actionExprs translates one Action; a DNAT among several backends adds
// its anonymous map to the batch.
func (w *writer) actionExprs(a Action) ([]expr.Any, error) {
	switch a := a.(type) {
	case jump:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: a.Chain}}, nil
	case vmap:
		return w.vmapExprs(a)
	case dnat:
		return w.dnatExprs(a)
	case reject:
		if a.TCPReset {
			return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}, nil
		}
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUn}}, nil
	case masquerade:
		return []expr.Any{&expr.Masq{}}, nil
	case drop:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, nil
	}
	return nil, fmt.Errorf("no translation for action %T", a)
}

func (w *writer) vmapExprs(a vmap) ([]expr.Any, error) {
	set := w.maps[a.Map]
	if set == nil {
		return nil, fmt.Errorf("no map %s", a.Map)
	}
	load := &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	if a.Key == "th dport" {
		load = &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
	}
	return []expr.Any{load, &expr.Lookup{
		SourceRegister: reg1, DestRegister: regVerdict, IsDestRegSet: true, SetName: set.Name, SetID: set.ID,
	}}, nil
}

// dnatExprs loads the backend's address into register 1 (the port, if
// any, into register 2) and translates to them. With several backends:
//
//	numgen random mod Total -> byteorder hton -> lookup interval map
//
// The draw is in host byte order; interval maps compare keys as big-endian
// bytes, hence the conversion (nft emits the same).
func (w *writer) dnatExprs(a dnat) ([]expr.Any, error) {
	var out []expr.Any
	if len(a.Slots) == 1 {
		out = append(out, &expr.Immediate{Register: reg1, Data: a.Slots[0].Addr.AsSlice()})
	} else {
		set, err := w.addPickMap(a)
		if err != nil {
			return nil, err
		}
		out = append(out,
			&expr.Numgen{Register: reg1, Modulus: a.Total, Type: unix.NFT_NG_RANDOM},
			&expr.Byteorder{SourceRegister: reg1, DestRegister: reg1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: set.Name, SetID: set.ID},
		)
	}
	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1}
	if a.Port != 0 {
		out = append(out, &expr.Immediate{Register: reg2, Data: be16(a.Port)})
		nat.RegProtoMin, nat.Specified = reg2, true
	}
	return append(out, nat), nil
}

// addPickMap adds the anonymous interval map of a weighted draw: each
// slot's first number maps to its backend, and one end element closes the
// last interval at Total.
func (w *writer) addPickMap(a dnat) (*nftables.Set, error) {
	set := &nftables.Set{
		Table: w.table, ID: w.nextSetID(), Name: "__map%d",
		Anonymous: true, Constant: true, Interval: true, IsMap: true,
		KeyType: nftables.TypeInteger, DataType: nftables.TypeIPAddr,
		KeyByteOrder: binaryutil.BigEndian,
	}
	elems := make([]nftables.SetElement, 0, len(a.Slots)+1)
	for _, s := range a.Slots {
		elems = append(elems, nftables.SetElement{Key: binaryutil.BigEndian.PutUint32(s.Lo), Val: s.Addr.AsSlice()})
	}
	elems = append(elems, nftables.SetElement{Key: binaryutil.BigEndian.PutUint32(a.Total), IntervalEnd: true})
	if err := w.conn.AddSet(set, elems); err != nil {
		return nil, fmt.Errorf("weighted map: %w", err)
	}
	return set, nil
}

func be16(v uint16) []byte { return binaryutil.BigEndian.PutUint16(v) }
