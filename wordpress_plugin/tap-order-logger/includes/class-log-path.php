<?php
/**
 * Where the orders log lives, and the guard that keeps it out of the web root.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Resolves the log path from the TAP_ORDER_LOG_PATH constant, else the `tap_order_log_path`
 * option, else the default next to the web root, then passes it through the
 * `tap_order_log_path` filter. The guard fails closed: a path is accepted only when it names a
 * regular `.log` or `.jsonl` file (or one not created yet, in an existing directory), outside
 * every directory the web server may serve and outside /dev, /proc, /sys and /etc, and neither
 * it nor what its symbolic links resolve to is a PHP or server configuration file. A refused
 * path falls back to the default and is reported.
 *
 * The served directories are known without the request (WP-CLI, system cron and `wp wc` have no
 * DOCUMENT_ROOT): ABSPATH, the site's home directory (get_home_path() semantics), wp-content and
 * uploads, and for each of those the directory its URL implies is the document root (ABSPATH
 * /var/www/html/wp/ served at https://shop.example/wp/ means /var/www/html is served).
 */
class TAP_Log_Path {

	const OPTION = 'tap_order_log_path';
	const FILTER = 'tap_order_log_path';
	const DEFAULT_RELATIVE = 'tap-logs/orders.log';

	/** The only file name endings accepted (lower case). */
	const EXTENSIONS = array( 'log', 'jsonl' );

	/** System directories no log may live in, whatever their permissions. */
	const SYSTEM_DIRS = array( '/dev', '/proc', '/sys', '/etc' );

	/** Names a web server or WordPress reads as code or configuration (lower case). */
	const CONFIG_NAMES = array( 'wp-config.php', '.htaccess', '.htpasswd', '.user.ini', 'php.ini', 'web.config' );

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
	 * The default: `tap-logs/orders.log` next to the outermost served directory, that is next to
	 * the WordPress directory on a standard install (`/var/www/html/` -> `/var/www/tap-logs/`),
	 * and next to the document root when WordPress sits in a subfolder of it. Only the
	 * request-independent markers count, so web, CLI and cron requests agree on the file.
	 *
	 * @return string
	 */
	public function default_path() {
		$outermost = rtrim( self::normalize_slashes( ABSPATH ), '/' );
		foreach ( $this->web_roots( false ) as $root ) {
			if ( strlen( $root ) < strlen( $outermost ) && self::is_within( $outermost, $root ) ) {
				$outermost = $root;
			}
		}
		return rtrim( dirname( $outermost ), '/' ) . '/' . self::DEFAULT_RELATIVE;
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
			if ( null === $exposure ) {
				$exposure = $this->exposure( self::lexical( $candidate ) );
			}
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
		$lexical = self::lexical( $path );
		$problem = self::name_problem( basename( $lexical ) );
		if ( null === $problem ) {
			$problem = self::system_problem( $lexical );
		}
		if ( null !== $problem ) {
			return $problem;
		}

		$resolved = self::canonical( $path );
		if ( null === $resolved ) {
			return 'the path goes through a symbolic link that cannot be resolved';
		}
		// A symbolic link is judged by what it points to.
		$problem = self::name_problem( basename( $resolved ) );
		if ( null === $problem ) {
			$problem = self::system_problem( $resolved );
		}
		if ( null !== $problem ) {
			return $lexical === $resolved ? $problem : sprintf( 'it resolves to %s: %s', $resolved, $problem );
		}

		clearstatcache( true, $resolved );
		if ( is_dir( $resolved ) ) {
			return 'the path is an existing directory';
		}
		if ( file_exists( $resolved ) && ! is_file( $resolved ) ) {
			return 'the path is not a regular file (a device, FIFO or socket)';
		}
		// Served through either name: the web server follows symbolic links too.
		foreach ( array_unique( array( $lexical, $resolved ) ) as $candidate ) {
			$exposure = $this->exposure( $candidate );
			if ( null !== $exposure && ! $this->unsafe_paths_allowed( $resolved ) ) {
				return sprintf( 'it resolves inside the %s, where the web server could serve it', $exposure );
			}
		}
		if ( ! file_exists( $resolved ) && ! $this->directory_ready( $resolved, $path ) ) {
			return sprintf( 'its directory %s does not exist or is not a directory: create it first, writable by the web server', dirname( $resolved ) );
		}
		return null;
	}

	/**
	 * Whether a not-yet-existing file can be created: its directory exists and is a directory.
	 * The default path's own directory (`tap-logs`) may be missing, the plugin creates it
	 * (mode 0750), as long as the directory above it exists.
	 *
	 * @param string $resolved Canonical path of the file.
	 * @param string $path     The path as given.
	 * @return bool
	 */
	private function directory_ready( $resolved, $path ) {
		$dir = dirname( $resolved );
		if ( is_dir( $dir ) ) {
			return true;
		}
		return ! file_exists( $dir ) && self::lexical( $path ) === self::lexical( $this->default_path() ) && is_dir( dirname( $dir ) );
	}

	/**
	 * Why a file name may not hold the log, or null: only `.log` and `.jsonl`, never a PHP file
	 * (also `orders.php.log`, which Apache's AddHandler runs as PHP) or a configuration file.
	 *
	 * @param string $name File name.
	 * @return string|null
	 */
	public static function name_problem( $name ) {
		$lower = strtolower( (string) $name );
		if ( in_array( $lower, self::CONFIG_NAMES, true ) ) {
			return sprintf( 'the file name %s is a WordPress or web server configuration file', $name );
		}
		if ( 1 === preg_match( '/\.(php[0-9]*|phtml|phar|pht|phps)(\.|$)/', $lower ) ) {
			return sprintf( 'the file name %s is a PHP file name', $name );
		}
		$extension = pathinfo( $lower, PATHINFO_EXTENSION );
		if ( ! in_array( $extension, self::EXTENSIONS, true ) || '.' . $extension === $lower ) {
			return sprintf( 'the file name %s does not end in .log or .jsonl', $name );
		}
		return null;
	}

	/**
	 * Why a path inside a system directory may not hold the log, or null.
	 *
	 * @param string $path Normalised absolute path.
	 * @return string|null
	 */
	public static function system_problem( $path ) {
		foreach ( self::SYSTEM_DIRS as $dir ) {
			if ( self::is_within( $path, $dir ) ) {
				return sprintf( 'it is inside %s, a system directory', $dir );
			}
		}
		return null;
	}

	/**
	 * Which served directory a path is inside ("uploads directory (/srv/...)"), or null.
	 *
	 * @param string $path Normalised absolute path.
	 * @return string|null
	 */
	public function exposure( $path ) {
		foreach ( $this->forbidden_roots() as $label => $root ) {
			if ( self::is_within( $path, $root ) ) {
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
	 * Directories the log must stay out of, longest first: each as configured and, when a
	 * symbolic link is involved, as resolved too.
	 *
	 * @return array<string, string> label => directory
	 */
	public function forbidden_roots() {
		$roots = $this->web_roots( true );
		// Most specific first, so a refusal names the closest directory (uploads, not the web root).
		uasort(
			$roots,
			static function ( $a, $b ) {
				return strlen( $b ) - strlen( $a );
			}
		);
		return $roots;
	}

	/**
	 * The directories a web server may serve, as label => normalised directory.
	 *
	 * @param bool $with_request Include the request's DOCUMENT_ROOT (absent on CLI and cron).
	 * @return array<string, string>
	 */
	public function web_roots( $with_request = true ) {
		$markers = array( 'WordPress web root' => array( ABSPATH, self::option_url( 'siteurl' ) ) );
		$home    = $this->home_path();
		if ( null !== $home ) {
			$markers['site home directory'] = array( $home, self::option_url( 'home' ) );
		}
		if ( defined( 'WP_CONTENT_DIR' ) ) {
			$markers['wp-content directory'] = array( WP_CONTENT_DIR, function_exists( 'content_url' ) ? (string) content_url() : ( defined( 'WP_CONTENT_URL' ) ? (string) WP_CONTENT_URL : '' ) );
		}
		if ( function_exists( 'wp_upload_dir' ) ) {
			$uploads = wp_upload_dir( null, false );
			if ( is_array( $uploads ) && ! empty( $uploads['basedir'] ) ) {
				$markers['uploads directory'] = array( $uploads['basedir'], isset( $uploads['baseurl'] ) ? (string) $uploads['baseurl'] : '' );
			}
		}

		$roots = array();
		foreach ( $markers as $label => $marker ) {
			list( $dir, $url ) = $marker;
			self::add_root( $roots, $label, $dir );
			$served = self::served_root( $dir, $url );
			if ( null !== $served ) {
				self::add_root( $roots, sprintf( 'document root implied by the %s URL', $label ), $served );
			}
		}
		if ( $with_request && ! empty( $_SERVER['DOCUMENT_ROOT'] ) && is_string( $_SERVER['DOCUMENT_ROOT'] ) ) {
			self::add_root( $roots, 'server document root', $_SERVER['DOCUMENT_ROOT'] ); // phpcs:ignore WordPress.Security.ValidatedSanitizedInput -- compared, never output.
		}
		return $roots;
	}

	/**
	 * The site's home directory, get_home_path() semantics (WordPress 7.1
	 * wp-admin/includes/file.php:107-121: when `home` and `siteurl` differ, WordPress lives in a
	 * subdirectory of the home directory, named by siteurl's path below home's), computed from
	 * ABSPATH instead of SCRIPT_FILENAME, which on CLI and cron names the runner's script.
	 * Null when siteurl does not name a subdirectory of home, or ABSPATH does not end with it.
	 *
	 * @return string|null
	 */
	public function home_path() {
		$home    = self::url_path( self::option_url( 'home' ) );
		$siteurl = self::url_path( self::option_url( 'siteurl' ) );
		if ( null === $home || null === $siteurl || $home === $siteurl ) {
			return null;
		}
		$prefix = '' === $home ? '' : $home . '/';
		if ( '' !== $prefix && 0 !== strpos( $siteurl, $prefix ) ) {
			return null;
		}
		return self::strip_suffix( ABSPATH, substr( $siteurl, strlen( $prefix ) ) );
	}

	/**
	 * The document root a directory's URL implies: the directory minus as many trailing
	 * components as the URL's path has, when those components match (with an Alias the URL
	 * says nothing about the filesystem, and the directory itself is refused anyway).
	 *
	 * @param string $dir Directory.
	 * @param string $url Its URL.
	 * @return string|null
	 */
	public static function served_root( $dir, $url ) {
		$path = self::url_path( $url );
		if ( null === $path || '' === $path ) {
			return null;
		}
		return self::strip_suffix( $dir, $path );
	}

	/**
	 * A directory without a trailing run of components ("a/b"), or null when it does not end so.
	 *
	 * @param string $dir    Directory.
	 * @param string $suffix Components, slash-separated, no leading or trailing slash.
	 * @return string|null
	 */
	private static function strip_suffix( $dir, $suffix ) {
		$dir = rtrim( self::lexical( (string) $dir ), '/' );
		if ( '' === $suffix ) {
			return '' === $dir ? '/' : $dir;
		}
		$tail = '/' . $suffix;
		if ( strlen( $dir ) <= strlen( $tail ) || substr( $dir, -strlen( $tail ) ) !== $tail ) {
			return null;
		}
		$root = substr( $dir, 0, -strlen( $tail ) );
		return '' === $root ? '/' : $root;
	}

	/**
	 * A URL's path without surrounding slashes, decoded ('' for the site root), or null.
	 *
	 * @param string $url URL.
	 * @return string|null
	 */
	private static function url_path( $url ) {
		if ( ! is_string( $url ) || '' === $url ) {
			return null;
		}
		$path = wp_parse_url( $url, PHP_URL_PATH );
		$path = is_string( $path ) ? rawurldecode( $path ) : '';
		if ( false !== strpos( $path, "\0" ) || false !== strpos( '/' . $path . '/', '/../' ) ) {
			return null;
		}
		return trim( self::normalize_slashes( $path ), '/' );
	}

	/**
	 * An option holding a URL, '' when unset.
	 *
	 * @param string $name `home` or `siteurl`.
	 * @return string
	 */
	private static function option_url( $name ) {
		$value = get_option( $name, '' );
		return is_string( $value ) ? trim( $value ) : '';
	}

	/**
	 * Adds a root in its lexical and its resolved form (they differ through symbolic links).
	 *
	 * @param array  $roots Roots, by label.
	 * @param string $label Label.
	 * @param string $dir   Directory.
	 */
	private static function add_root( array &$roots, $label, $dir ) {
		if ( ! is_string( $dir ) || ! self::is_absolute( $dir ) || false !== strpos( $dir, "\0" ) ) {
			return;
		}
		$lexical = self::lexical( $dir );
		$roots[ $label ] = $lexical;
		$resolved = self::canonical( $dir );
		if ( null !== $resolved && $resolved !== $lexical ) {
			$roots[ $label . ', resolved' ] = $resolved;
		}
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
	 * Resolves `.` and `..` by name only, following no symbolic link.
	 *
	 * @param string $path Absolute path.
	 * @return string
	 */
	public static function lexical( $path ) {
		$path   = self::normalize_slashes( $path );
		$prefix = '';
		if ( 1 === preg_match( '#^([A-Za-z]:)/#', $path, $match ) ) {
			$prefix = $match[1];
			$path   = substr( $path, 2 );
		}
		$parts = array();
		foreach ( explode( '/', $path ) as $part ) {
			if ( '' === $part || '.' === $part ) {
				continue;
			}
			if ( '..' === $part ) {
				array_pop( $parts );
				continue;
			}
			$parts[] = $part;
		}
		return $prefix . '/' . implode( '/', $parts );
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
