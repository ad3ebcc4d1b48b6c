server {
  listen          = "localhost"
  admin_socket    = "admin.sock"
  max_body        = "1M"
  request_timeout = "300"
  queue_per_model = 100
  log_level       = "verbose"
  cors_origins    = ["localhost:3000"]
}

memory {
  budget = "6 gigs"
}

cache {
  max_size = "-1GiB"
}

thermal {
  poll_interval = "soon"
}

model "a" {
  path          = "models/small.gguf"
  memory_budget = "1.5"
  keep_alive    = "10 minutes"
}
