package api

// CurrentRole is the role a node has now: Node.role, or spec.role on a
// node recorded before roles could change. Spec.role is only the role
// asked for, which a promotion or demotion is moving towards.
func (n *Node) CurrentRole() NodeRole {
	if r := n.GetRole(); r != NodeRole_NODE_ROLE_UNSPECIFIED {
		return r
	}
	return n.GetSpec().GetRole()
}

// IsManager says whether the node is a manager now.
func (n *Node) IsManager() bool { return n.CurrentRole() == NodeRole_NODE_ROLE_MANAGER }
