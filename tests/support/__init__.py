"""Scaffolding shared by the tests: a course to grade, hostile submissions, a class to load-test, PostgreSQL."""
