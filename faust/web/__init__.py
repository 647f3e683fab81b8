"""The worker's web server: views, blueprints, table routes and the built-in pages."""
