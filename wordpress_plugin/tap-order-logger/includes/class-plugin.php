<?php
/**
 * Wiring: builds the parts and adds their hooks.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * The plugin's composition root.
 */
class TAP_Plugin {

	/**
	 * The instance WordPress runs.
	 *
	 * @var TAP_Plugin|null
	 */
	private static $instance = null;

	/**
	 * Parts.
	 *
	 * @var TAP_Reporter
	 */
	public $reporter;

	/**
	 * Log path resolver.
	 *
	 * @var TAP_Log_Path
	 */
	public $log_path;

	/**
	 * Visit tracker.
	 *
	 * @var TAP_Session_Tracker
	 */
	public $session;

	/**
	 * Order logger.
	 *
	 * @var TAP_Order_Logger
	 */
	public $order_logger;

	/**
	 * Settings screen.
	 *
	 * @var TAP_Settings
	 */
	public $settings;

	/**
	 * Consent check (WP Consent API).
	 *
	 * @var TAP_Consent
	 */
	public $consent;

	/**
	 * Retry queue (Action Scheduler, else WP-Cron).
	 *
	 * @var TAP_Retry_Queue
	 */
	public $queue;

	/**
	 * Privacy exporter, eraser and policy text.
	 *
	 * @var TAP_Privacy
	 */
	public $privacy;

	/**
	 * Builds the parts.
	 *
	 * @param TAP_Cookie_Jar|null $cookies Cookie access (tests pass a recording one).
	 * @param callable|null       $clock   Current Unix time (tests pass their own).
	 * @param TAP_Log_Writer|null $writer  Log writer (tests pass one with their own clock).
	 */
	public function __construct( $cookies = null, $clock = null, $writer = null ) {
		$this->reporter     = new TAP_Reporter();
		$this->log_path     = new TAP_Log_Path( $this->reporter );
		$this->consent      = new TAP_Consent();
		$this->session      = new TAP_Session_Tracker( $cookies instanceof TAP_Cookie_Jar ? $cookies : new TAP_Cookie_Jar(), $clock, $this->consent );
		$this->queue        = new TAP_Retry_Queue( $this->reporter, $clock );
		$this->order_logger = new TAP_Order_Logger( $this->log_path, $writer instanceof TAP_Log_Writer ? $writer : new TAP_Log_Writer(), $this->session, $this->reporter, $this->queue );
		$this->settings     = new TAP_Settings( $this->log_path );
		$this->privacy      = new TAP_Privacy( $this->reporter, $clock );
	}

	/**
	 * `plugins_loaded`: create the instance once and hook it in.
	 *
	 * @return TAP_Plugin
	 */
	public static function boot() {
		if ( null === self::$instance ) {
			self::$instance = new self();
			self::$instance->register_hooks();
		}
		return self::$instance;
	}

	/**
	 * Adds every hook.
	 */
	public function register_hooks() {
		add_action( 'init', array( $this, 'load_textdomain' ) );
		$this->consent->register();
		$this->session->register();
		$this->order_logger->register();
		$this->privacy->register();
		if ( is_admin() ) {
			$this->settings->register();
		}
	}

	/**
	 * Translations from languages/.
	 */
	public function load_textdomain() {
		load_plugin_textdomain( 'tap-order-logger', false, dirname( plugin_basename( TAP_ORDER_LOGGER_FILE ) ) . '/languages' );
	}

	/**
	 * Activation: add the option (empty = default path) and try to create the log directory,
	 * reporting (never failing) when it cannot be created.
	 */
	public static function activate() {
		add_option( TAP_Log_Path::OPTION, '' );
		add_option( TAP_Order_Logger::LOCK_TIMEOUT_OPTION, TAP_Log_Writer::DEFAULT_LOCK_TIMEOUT );
		$reporter = new TAP_Reporter();
		$path     = ( new TAP_Log_Path( $reporter ) )->resolve();
		if ( null === $path ) {
			return;
		}
		try {
			( new TAP_Log_Writer() )->ensure_directory( dirname( $path ) );
		} catch ( \Throwable $e ) {
			$reporter->error( 'The log directory could not be created at activation: ' . $e->getMessage() );
		}
	}

	/**
	 * Declares support for HPOS order storage and the cart/checkout blocks.
	 */
	public static function declare_woocommerce_compatibility() {
		if ( class_exists( '\Automattic\WooCommerce\Utilities\FeaturesUtil' ) ) {
			\Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility( 'custom_order_tables', TAP_ORDER_LOGGER_FILE, true );
			\Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility( 'cart_checkout_blocks', TAP_ORDER_LOGGER_FILE, true );
		}
	}
}
