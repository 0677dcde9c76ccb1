-- One PostgreSQL server, a database per service: the registry never reads tracking tables.
CREATE DATABASE modelreg_tracking;
CREATE DATABASE modelreg_registry;
-- Users, groups and API tokens, which both services read.
CREATE DATABASE modelreg_auth;
