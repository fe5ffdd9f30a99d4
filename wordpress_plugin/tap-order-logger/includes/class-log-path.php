<?php
/**
 * Where the orders log lives, and the guard that keeps it out of the web root.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Resolves the log path from the TAP_ORDER_LOG_PATH constant, else the `tap_order_log_path`
 * option, else the default next to the WordPress directory, then passes it through the
 * `tap_order_log_path` filter; refuses any path that resolves
 * (after `..` and symbolic links) inside the web root, wp-content, the uploads directory or
 * the server's document root. A refused path falls back to the default and is reported.
 */
class TAP_Log_Path {

	const OPTION = 'tap_order_log_path';
	const FILTER = 'tap_order_log_path';
	const DEFAULT_RELATIVE = 'tap-logs/orders.log';

	/**
	 * Problem reporter.
	 *
	 * @var TAP_Reporter
	 */
	private $reporter;

	/**
	 * Paths already reported in this request, so one bad setting logs one message.
	 *
	 * @var array<string, bool>
	 */
	private $reported = array();

	/**
	 * Constructor.
	 *
	 * @param TAP_Reporter $reporter Problem reporter.
	 */
	public function __construct( TAP_Reporter $reporter ) {
		$this->reporter = $reporter;
	}

	/**
	 * The default: `<parent of the WordPress directory>/tap-logs/orders.log`.
	 *
	 * @return string
	 */
	public function default_path() {
		$wordpress_dir = rtrim( self::normalize_slashes( ABSPATH ), '/' );
		return dirname( $wordpress_dir ) . '/' . self::DEFAULT_RELATIVE;
	}

	/**
	 * The configured path ('' when unset): the TAP_ORDER_LOG_PATH constant (wp-config.php,
	 * e.g. through the WordPress image's WORDPRESS_CONFIG_EXTRA) when defined, else the setting.
	 *
	 * @return string
	 */
	public function configured_path() {
		$constant = $this->constant_path();
		if ( '' !== $constant ) {
			return $constant;
		}
		$value = get_option( self::OPTION, '' );
		return is_string( $value ) ? trim( $value ) : '';
	}

	/**
	 * The TAP_ORDER_LOG_PATH constant, or '' when it is not defined.
	 *
	 * @return string
	 */
	public function constant_path() {
		return defined( 'TAP_ORDER_LOG_PATH' ) && is_string( TAP_ORDER_LOG_PATH ) ? trim( TAP_ORDER_LOG_PATH ) : '';
	}

	/**
	 * The path to write to, or null when neither the configured path nor the default is safe.
	 *
	 * @return string|null
	 */
	public function resolve() {
		$candidate = $this->configured_path();
		if ( '' === $candidate ) {
			$candidate = $this->default_path();
		}
		$filtered = apply_filters( self::FILTER, $candidate );
		$candidate = is_string( $filtered ) ? trim( $filtered ) : '';

		$problem = $this->problem( $candidate );
		if ( null === $problem ) {
			$resolved = self::canonical( $candidate );
			$exposure = $this->exposure( $resolved );
			if ( null !== $exposure ) {
				$this->report_once(
					$resolved,
					sprintf( 'The orders log "%s" is inside the %s (allowed by the tap_order_log_allow_unsafe_path filter): make sure the web server denies it.', $resolved, $exposure ),
					'warning'
				);
			}
			return $resolved;
		}

		$default = $this->default_path();
		if ( $candidate === $default ) {
			$this->report_once( $default, $this->unsafe_default_message( $default, $problem ) );
			return null;
		}
		$this->report_once(
			$candidate,
			sprintf( 'Refused log path "%s": %s. Writing to the default "%s" instead.', $candidate, $problem, $default )
		);

		$default_problem = $this->problem( $default );
		if ( null === $default_problem ) {
			return self::canonical( $default );
		}
		$this->report_once( $default, $this->unsafe_default_message( $default, $default_problem ) );
		return null;
	}

	/**
	 * The message for an unusable default.
	 *
	 * @param string $default Default path.
	 * @param string $problem Why it is refused.
	 * @return string
	 */
	private function unsafe_default_message( $default, $problem ) {
		return sprintf( 'The default log path "%s" is not safe either: %s. No order line is written until a path outside the web root is configured (setting or tap_order_log_path filter).', $default, $problem );
	}

	/**
	 * Why a path may not hold the log, or null when it may.
	 *
	 * @param string $path Candidate path.
	 * @return string|null
	 */
	public function problem( $path ) {
		if ( ! is_string( $path ) || '' === $path ) {
			return 'the path is empty';
		}
		if ( false !== strpos( $path, "\0" ) ) {
			return 'the path contains a NUL byte';
		}
		if ( ! self::is_absolute( $path ) ) {
			return 'the path is not absolute';
		}
		if ( '/' === substr( self::normalize_slashes( $path ), -1 ) ) {
			return 'the path names a directory, not a file';
		}
		$resolved = self::canonical( $path );
		if ( null === $resolved ) {
			return 'the path goes through a symbolic link that cannot be resolved';
		}
		if ( is_dir( $resolved ) ) {
			return 'the path is an existing directory';
		}
		$exposure = $this->exposure( $resolved );
		if ( null !== $exposure && ! $this->unsafe_paths_allowed( $resolved ) ) {
			return sprintf( 'it resolves inside the %s, where the web server could serve it', $exposure );
		}
		return null;
	}

	/**
	 * Which served directory a canonical path is inside ("uploads directory (/srv/...)"), or null.
	 *
	 * @param string $resolved Canonical path.
	 * @return string|null
	 */
	public function exposure( $resolved ) {
		foreach ( $this->forbidden_roots() as $label => $root ) {
			if ( self::is_within( $resolved, $root ) ) {
				return sprintf( '%s (%s)', $label, $root );
			}
		}
		return null;
	}

	/**
	 * The escape hatch for an admin who insists on a path under the web root and has denied it
	 * in the web server (README: "Deny rules"): `tap_order_log_allow_unsafe_path` returning true.
	 * Code only, no setting; every request that writes there reports a warning.
	 *
	 * @param string $resolved Canonical path.
	 * @return bool
	 */
	private function unsafe_paths_allowed( $resolved ) {
		return true === apply_filters( 'tap_order_log_allow_unsafe_path', false, $resolved );
	}

	/**
	 * Directories the log must stay out of, canonicalised, longest first.
	 *
	 * @return array<string, string> label => directory
	 */
	public function forbidden_roots() {
		$roots = array( 'WordPress web root' => ABSPATH );
		if ( defined( 'WP_CONTENT_DIR' ) ) {
			$roots['wp-content directory'] = WP_CONTENT_DIR;
		}
		if ( function_exists( 'wp_upload_dir' ) ) {
			$uploads = wp_upload_dir( null, false );
			if ( is_array( $uploads ) && ! empty( $uploads['basedir'] ) ) {
				$roots['uploads directory'] = $uploads['basedir'];
			}
		}
		if ( ! empty( $_SERVER['DOCUMENT_ROOT'] ) && is_string( $_SERVER['DOCUMENT_ROOT'] ) ) {
			$roots['server document root'] = $_SERVER['DOCUMENT_ROOT']; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput -- compared, never output.
		}

		$canonical = array();
		foreach ( $roots as $label => $root ) {
			$resolved = self::is_absolute( $root ) ? self::canonical( $root ) : null;
			if ( null !== $resolved ) {
				$canonical[ $label ] = $resolved;
			}
		}
		// Most specific first, so a refusal names the closest directory (uploads, not the web root).
		uasort(
			$canonical,
			static function ( $a, $b ) {
				return strlen( $b ) - strlen( $a );
			}
		);
		return $canonical;
	}

	/**
	 * Whether a canonical path is the root itself or below it.
	 *
	 * @param string $path Canonical path.
	 * @param string $root Canonical directory.
	 * @return bool
	 */
	public static function is_within( $path, $root ) {
		$root = rtrim( $root, '/' );
		if ( '' === $root ) {
			return true; // The filesystem root contains everything.
		}
		return $path === $root || 0 === strpos( $path, $root . '/' );
	}

	/**
	 * Whether a path is absolute (POSIX, or a Windows drive path).
	 *
	 * @param string $path Path.
	 * @return bool
	 */
	public static function is_absolute( $path ) {
		$path = self::normalize_slashes( (string) $path );
		return '' !== $path && ( '/' === $path[0] || 1 === preg_match( '#^[A-Za-z]:/#', $path ) );
	}

	/**
	 * Resolves `.`, `..` and symbolic links component by component, for paths whose last
	 * components may not exist yet. Returns null for a dangling symbolic link.
	 *
	 * @param string $path Absolute path.
	 * @return string|null
	 */
	public static function canonical( $path ) {
		$path   = self::normalize_slashes( $path );
		$prefix = '';
		if ( 1 === preg_match( '#^([A-Za-z]:)/#', $path, $match ) ) {
			$prefix = $match[1];
			$path   = substr( $path, 2 );
		}
		$current = $prefix . '/';
		foreach ( explode( '/', $path ) as $part ) {
			if ( '' === $part || '.' === $part ) {
				continue;
			}
			if ( '..' === $part ) {
				$parent  = self::normalize_slashes( dirname( $current ) );
				$current = ( '' === $parent || '.' === $parent ) ? $prefix . '/' : $parent;
				continue;
			}
			$next = rtrim( $current, '/' ) . '/' . $part;
			if ( is_link( $next ) || file_exists( $next ) ) {
				$real = realpath( $next );
				if ( false === $real ) {
					return null;
				}
				$next = self::normalize_slashes( $real );
			}
			$current = $next;
		}
		return $current;
	}

	/**
	 * Backslashes to slashes, duplicate slashes collapsed.
	 *
	 * @param string $path Path.
	 * @return string
	 */
	public static function normalize_slashes( $path ) {
		return (string) preg_replace( '#/{2,}#', '/', str_replace( '\\', '/', (string) $path ) );
	}

	/**
	 * Reports a refused path once per request.
	 *
	 * @param string $key     Path the message is about.
	 * @param string $message Message.
	 * @param string $level   error or warning.
	 */
	private function report_once( $key, $message, $level = 'error' ) {
		if ( isset( $this->reported[ $key ] ) ) {
			return;
		}
		$this->reported[ $key ] = true;
		if ( 'warning' === $level ) {
			$this->reporter->warning( $message );
		} else {
			$this->reporter->error( $message );
		}
	}
}
