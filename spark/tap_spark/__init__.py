"""TAP's Spark jobs: process_orders (Spark SQL) and behaviour (MLlib), and the behaviour model."""
