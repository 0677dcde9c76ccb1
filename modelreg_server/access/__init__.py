"""Access control shared by both services: who the caller is (authentication) and what they may do
(the levels and the policy the domains apply). Users, groups and API tokens live in the access
database, which both services open (MODELREG_AUTH_DATABASE_URL); grants live beside what they
protect (experiment grants in the tracking database, model grants in the registry database) so
searches can apply them inside their queries.
"""
