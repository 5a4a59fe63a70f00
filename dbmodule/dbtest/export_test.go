package dbtest

// For tests of the external package.
var (
	ScramVerifier = scramVerifier
	RoleName      = roleName
	LockOwner     = lockOwner
)

// TemplateOf is the template s clones; "" before its first database.
func TemplateOf(s *Server) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kit == nil {
		return ""
	}
	return s.kit.clones.template
}

// RoleURL is the URL of database db as the role, on s's server.
func RoleURL(s *Server, db string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kit.roleURL(db)
}
