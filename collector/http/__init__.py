"""The HTTP boundary: ``app.create_app`` mounts the sources (collector.sources),
the admin and operations endpoints; ``errors`` turns every refused request into
a response in one place; ``openapi`` documents it from the same Structs."""
