//! Adapters for the ports: AWS ones for Lambda, embedded ones for one machine.
