<?php
/**
 * Settings > TAP Order Logger: the log path field.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Two fields saved through the Settings API:
 *
 * - `tap_order_log_path`: a path the guard refuses (TAP_Log_Path::problem()) is not saved (the
 *   previous value is kept and the admin sees why); empty means the default outside the web root;
 * - `tap_order_log_lock_timeout`: seconds a checkout waits for the log's lock before the line is
 *   queued for a retry (0 to 10, default 2).
 */
class TAP_Settings {

	const PAGE  = 'tap-order-logger';
	const GROUP = 'tap_order_logger';

	/**
	 * Log path resolver.
	 *
	 * @var TAP_Log_Path
	 */
	private $log_path;

	/**
	 * Constructor.
	 *
	 * @param TAP_Log_Path $log_path Log path resolver.
	 */
	public function __construct( TAP_Log_Path $log_path ) {
		$this->log_path = $log_path;
	}

	/**
	 * Admin hooks.
	 */
	public function register() {
		add_action( 'admin_menu', array( $this, 'add_page' ) );
		add_action( 'admin_init', array( $this, 'register_setting' ) );
		add_filter( 'plugin_action_links_' . plugin_basename( TAP_ORDER_LOGGER_FILE ), array( $this, 'action_links' ) );
	}

	/**
	 * Settings > TAP Order Logger.
	 */
	public function add_page() {
		add_options_page(
			__( 'TAP Order Logger', 'tap-order-logger' ),
			__( 'TAP Order Logger', 'tap-order-logger' ),
			'manage_options',
			self::PAGE,
			array( $this, 'render_page' )
		);
	}

	/**
	 * The option, its section and its field.
	 */
	public function register_setting() {
		register_setting(
			self::GROUP,
			TAP_Log_Path::OPTION,
			array(
				'type'              => 'string',
				'default'           => '',
				'sanitize_callback' => array( $this, 'sanitize_path' ),
			)
		);
		register_setting(
			self::GROUP,
			TAP_Order_Logger::LOCK_TIMEOUT_OPTION,
			array(
				'type'              => 'number',
				'default'           => TAP_Log_Writer::DEFAULT_LOCK_TIMEOUT,
				'sanitize_callback' => array( 'TAP_Order_Logger', 'sanitize_lock_timeout' ),
			)
		);
		add_settings_section( 'tap_order_logger_log', __( 'Orders log', 'tap-order-logger' ), '__return_false', self::PAGE );
		add_settings_field(
			TAP_Log_Path::OPTION,
			__( 'Log file path', 'tap-order-logger' ),
			array( $this, 'render_field' ),
			self::PAGE,
			'tap_order_logger_log',
			array( 'label_for' => TAP_Log_Path::OPTION )
		);
		add_settings_field(
			TAP_Order_Logger::LOCK_TIMEOUT_OPTION,
			__( 'Lock wait (seconds)', 'tap-order-logger' ),
			array( $this, 'render_lock_timeout_field' ),
			self::PAGE,
			'tap_order_logger_log',
			array( 'label_for' => TAP_Order_Logger::LOCK_TIMEOUT_OPTION )
		);
	}

	/**
	 * The lock timeout field.
	 */
	public function render_lock_timeout_field() {
		printf(
			'<input type="number" class="small-text" min="0" max="%1$s" step="0.1" id="%2$s" name="%2$s" value="%3$s" />',
			esc_attr( (string) TAP_Order_Logger::MAX_LOCK_TIMEOUT ),
			esc_attr( TAP_Order_Logger::LOCK_TIMEOUT_OPTION ),
			esc_attr( (string) TAP_Order_Logger::lock_timeout() )
		);
		echo '<p class="description">' . esc_html__( 'How long a checkout waits when another process holds the orders log. After that the checkout goes on and the order is written shortly after by a background task (Action Scheduler, or WP-Cron).', 'tap-order-logger' ) . '</p>';
	}

	/**
	 * Accepts '' (the default) or an absolute file path outside the web root.
	 *
	 * @param mixed $value Submitted value.
	 * @return string
	 */
	public function sanitize_path( $value ) {
		$path = is_string( $value ) ? trim( $value ) : '';
		if ( '' === $path ) {
			return '';
		}
		$problem = $this->log_path->problem( $path );
		if ( null !== $problem ) {
			add_settings_error(
				TAP_Log_Path::OPTION,
				'tap_log_path_refused',
				sprintf(
					/* translators: 1: the refused path, 2: the reason. */
					__( 'The log path "%1$s" was not saved: %2$s. Choose a path outside the web root.', 'tap-order-logger' ),
					$path,
					$problem
				)
			);
			$previous = get_option( TAP_Log_Path::OPTION, '' );
			return is_string( $previous ) ? $previous : '';
		}
		return TAP_Log_Path::normalize_slashes( $path );
	}

	/**
	 * The text field.
	 */
	public function render_field() {
		$resolved = $this->log_path->resolve();
		if ( '' !== $this->log_path->constant_path() ) {
			echo '<p><strong>' . esc_html__( 'Set by the TAP_ORDER_LOG_PATH constant in wp-config.php; the field below is ignored.', 'tap-order-logger' ) . '</strong></p>';
		}
		printf(
			'<input type="text" class="large-text code" id="%1$s" name="%1$s" value="%2$s" placeholder="%3$s" />',
			esc_attr( TAP_Log_Path::OPTION ),
			esc_attr( (string) get_option( TAP_Log_Path::OPTION, '' ) ),
			esc_attr( $this->log_path->default_path() )
		);
		echo '<p class="description">' . esc_html__( 'Absolute path of the orders log, a .log or .jsonl file in an existing directory. Leave empty for the default, next to (never inside) the web root. Paths the web server could serve (the WordPress directory, the site\'s home directory, wp-content, uploads, the document root), system directories (/dev, /proc, /sys, /etc) and PHP or configuration files are refused.', 'tap-order-logger' ) . '</p>';
		if ( null === $resolved ) {
			echo '<p class="notice notice-error inline">' . esc_html__( 'No safe log path: order lines are not being written.', 'tap-order-logger' ) . '</p>';
			return;
		}
		$writable = is_file( $resolved ) ? is_writable( $resolved ) : is_writable( $this->nearest_existing_dir( dirname( $resolved ) ) ); // phpcs:ignore WordPress.WP.AlternativeFunctions.file_system_operations_is_writable
		printf(
			'<p>%s <code>%s</code> %s</p>',
			esc_html__( 'Lines are written to', 'tap-order-logger' ),
			esc_html( $resolved ),
			$writable ? '' : '<strong>' . esc_html__( '(not writable by the web server)', 'tap-order-logger' ) . '</strong>'
		);
	}

	/**
	 * The settings page.
	 */
	public function render_page() {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		echo '<div class="wrap"><h1>' . esc_html( get_admin_page_title() ) . '</h1><form action="options.php" method="post">';
		settings_fields( self::GROUP );
		do_settings_sections( self::PAGE );
		submit_button();
		echo '</form></div>';
	}

	/**
	 * A "Settings" link on the Plugins screen.
	 *
	 * @param array $links Links.
	 * @return array
	 */
	public function action_links( $links ) {
		$url = admin_url( 'options-general.php?page=' . self::PAGE );
		array_unshift( $links, '<a href="' . esc_url( $url ) . '">' . esc_html__( 'Settings', 'tap-order-logger' ) . '</a>' );
		return $links;
	}

	/**
	 * The closest existing ancestor directory.
	 *
	 * @param string $dir Directory.
	 * @return string
	 */
	private function nearest_existing_dir( $dir ) {
		while ( ! is_dir( $dir ) && dirname( $dir ) !== $dir ) {
			$dir = dirname( $dir );
		}
		return $dir;
	}
}
